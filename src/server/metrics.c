/*
 * metrics.c: process-wide counters and gauges (C11 atomics, no locks) and their
 * Prometheus text exposition for GET /metrics.
 */
#include "server/server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static _Atomic uint64_t g_counters[SRV_M_COUNTER_COUNT];
static _Atomic int64_t g_gauges[SRV_G_GAUGE_COUNT];

static const struct { const char *name, *help; } k_counter_names[SRV_M_COUNTER_COUNT] = {
    [SRV_M_REQUESTS]       = { "nook_http_requests_total", "HTTP requests answered" },
    [SRV_M_REQUESTS_4XX]   = { "nook_http_requests_4xx_total", "HTTP requests answered with a 4xx status" },
    [SRV_M_REQUESTS_5XX]   = { "nook_http_requests_5xx_total", "HTTP requests answered with a 5xx status" },
    [SRV_M_PROMPT_TOKENS]  = { "nook_prompt_tokens_total", "prompt tokens evaluated" },
    [SRV_M_GEN_TOKENS]     = { "nook_generated_tokens_total", "tokens generated" },
    [SRV_M_CANCELLED]      = { "nook_cancelled_total", "generations cancelled because the client went away" },
    [SRV_M_REJECTED_QUEUE] = { "nook_queue_rejected_total", "requests refused with 503 because the queue was full" },
};
static const struct { const char *name, *help; } k_gauge_names[SRV_G_GAUGE_COUNT] = {
    [SRV_G_CONNECTIONS]   = { "nook_http_connections", "open HTTP connections" },
    [SRV_G_IN_FLIGHT]     = { "nook_http_in_flight", "requests being handled or streamed" },
    [SRV_G_QUEUE]         = { "nook_queue_length", "generation requests waiting for a sequence" },
    [SRV_G_ACTIVE_SEQS]   = { "nook_active_sequences", "sequences being generated" },
    [SRV_G_LOADED_MODELS] = { "nook_loaded_models", "models resident in memory" },
};

void srv_metric_add(srv_counter c, uint64_t n) {
    if ((unsigned)c < SRV_M_COUNTER_COUNT) atomic_fetch_add(&g_counters[c], n);
}
void srv_gauge_add(srv_gauge g, int64_t d) {
    if ((unsigned)g < SRV_G_GAUGE_COUNT) atomic_fetch_add(&g_gauges[g], d);
}
void srv_gauge_set(srv_gauge g, int64_t v) {
    if ((unsigned)g < SRV_G_GAUGE_COUNT) atomic_store(&g_gauges[g], v);
}
int64_t srv_gauge_get(srv_gauge g) {
    return (unsigned)g < SRV_G_GAUGE_COUNT ? atomic_load(&g_gauges[g]) : 0;
}

char *srv_metrics_text(size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = nk_malloc(cap);
    if (!buf) return NULL;
    for (int i = 0; i < SRV_M_COUNTER_COUNT; i++) {
        int w = snprintf(buf + n, cap - n, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n",
                         k_counter_names[i].name, k_counter_names[i].help, k_counter_names[i].name,
                         k_counter_names[i].name, (unsigned long long)atomic_load(&g_counters[i]));
        if (w > 0) n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    for (int i = 0; i < SRV_G_GAUGE_COUNT; i++) {
        int w = snprintf(buf + n, cap - n, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n",
                         k_gauge_names[i].name, k_gauge_names[i].help, k_gauge_names[i].name,
                         k_gauge_names[i].name, (long long)atomic_load(&g_gauges[i]));
        if (w > 0) n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    *len = n;
    return buf;
}
