/*
 * routes_embed.c: embeddings: Ollama's /api/embed (L2-normalised vectors, batch input,
 * truncate, dimensions) and legacy /api/embeddings (one raw vector, as Ollama's), and
 * OpenAI's /v1/embeddings (float or base64). The vectors come from the engine's
 * pooled hidden states (models.c, srv_model_embed).
 */
#include "server/models.h"
#include "server/request.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Cut to dims (when 0 < dims < d) and L2-normalise in place (Ollama's embed). */
static int normalize(float *v, int d, int dims) {
    if (dims > 0 && dims < d) d = dims;
    double ss = 0;
    for (int i = 0; i < d; i++) ss += (double)v[i] * v[i];
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] * inv);
    return d;
}

static json_t *vec_json(const float *v, int d) {
    json_t *a = json_array();
    for (int i = 0; i < d; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

static json_t *vec_base64(const float *v, int d) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = (size_t)d * 4, o = 0;
    const unsigned char *b = (const unsigned char *)v;   /* little-endian float32, as OpenAI's */
    char *out = nk_malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned x = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        out[o++] = tbl[x >> 18 & 63];
        out[o++] = tbl[x >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[x >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[x & 63] : '=';
    }
    out[o] = 0;
    json_t *s = json_string(out);
    nk_free(out);
    return s;
}

static void handle(srv_req *r, srv_kind kind) {
    srv_server *s = srv_req_server(r);
    json_t *body = srv_req_json(r);
    if (!body) return;
    srv_gen_request q;
    char msg[600];
    int st = srv_gen_request_parse(body, kind, srv_get_config(s)->max_messages, &q, msg, sizeof msg);
    if (st) { srv_reply_error(r, st, "%s", msg); srv_gen_request_free(&q); return; }
    int64_t t0 = mono_ns();
    srv_model *m = NULL;
    int64_t load_ns = 0;
    st = srv_models_acquire(s, q.model, q.opt.num_ctx, &m, &load_ns, msg, sizeof msg);
    if (st) { srv_reply_error(r, st, "%s", msg); srv_gen_request_free(&q); return; }
    float *v = NULL;
    int d = 0, ntok = 0;
    st = srv_model_embed(m, q.inputs, q.n_inputs, q.truncate, &v, &d, &ntok, msg, sizeof msg);
    srv_models_release(s, m, q.has_keep_alive, q.keep_alive_ns);
    if (st) { srv_reply_error(r, st, "%s", msg); srv_gen_request_free(&q); return; }
    srv_metric_add(SRV_M_PROMPT_TOKENS, (uint64_t)ntok);
    json_t *out = NULL;
    if (kind == SRV_EMBEDDINGS) {   /* legacy: one raw vector; empty prompt: an empty one */
        out = json_pack("{s:o}", "embedding", q.n_inputs ? vec_json(v, d) : json_array());
    } else if (kind == SRV_EMBED) {
        json_t *arr = json_array();
        for (int i = 0; i < q.n_inputs; i++) {
            int dd = normalize(v + (size_t)i * (size_t)d, d, q.dimensions);
            json_array_append_new(arr, vec_json(v + (size_t)i * (size_t)d, dd));
        }
        out = json_pack("{s:s,s:o,s:I,s:I,s:i}", "model", q.model, "embeddings", arr, "total_duration",
                        (json_int_t)(mono_ns() - t0), "load_duration", (json_int_t)load_ns, "prompt_eval_count", ntok);
    } else {
        json_t *data = json_array();
        for (int i = 0; i < q.n_inputs; i++) {
            float *x = v + (size_t)i * (size_t)d;
            int dd = normalize(x, d, q.dimensions);
            json_array_append_new(data, json_pack("{s:s,s:o,s:i}", "object", "embedding", "embedding",
                                                  q.base64 ? vec_base64(x, dd) : vec_json(x, dd), "index", i));
        }
        out = json_pack("{s:s,s:o,s:s,s:{s:i,s:i}}", "object", "list", "data", data, "model", q.model, "usage",
                        "prompt_tokens", ntok, "total_tokens", ntok);
    }
    nk_free(v);
    srv_reply_json(r, 200, out);
    srv_gen_request_free(&q);
}

static void h_embed(srv_req *r) { handle(r, SRV_EMBED); }
static void h_embeddings(srv_req *r) { handle(r, SRV_EMBEDDINGS); }
static void h_v1_embeddings(srv_req *r) { handle(r, SRV_OAI_EMBED); }

static const srv_route k_routes[] = {
    { "POST", "/api/embed",      SRV_API_OLLAMA, 0, h_embed },
    { "POST", "/api/embeddings", SRV_API_OLLAMA, 0, h_embeddings },
    { "POST", "/v1/embeddings",  SRV_API_OPENAI, 0, h_v1_embeddings },
};
const srv_route_table srv_routes_embed = { k_routes, NK_ARRAY_LEN(k_routes) };
