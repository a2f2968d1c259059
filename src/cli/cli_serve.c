/*
 * cli_serve.c: `nook serve`: start the HTTP server (src/server) and wait for SIGINT or
 * SIGTERM, then drain: stop accepting, let requests in flight finish (up to 30 s),
 * exit. Configuration comes from the environment as Ollama's does (docs/api.md):
 * NOOK_HOST (default 127.0.0.1:11434), NOOK_ORIGINS, NOOK_API_KEY, NOOK_KEEP_ALIVE,
 * NOOK_NUM_PARALLEL, NOOK_MAX_QUEUE, NOOK_MAX_LOADED_MODELS, NOOK_CONTEXT_LENGTH,
 * NOOK_KV_CACHE_TYPE, NOOK_MAX_CONNECTIONS.
 */
#include "cli/cli.h"
#include "server/server.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

static const cli_verb_info k_info = {
    "serve", "",
    "Serve Ollama's HTTP API and the OpenAI API (docs/api.md) on NOOK_HOST\n"
    "(default 127.0.0.1:11434; host, host:port or a URL, as OLLAMA_HOST). Models are\n"
    "GGUF paths (absolute or relative to this directory) or store names.\n"
    "Environment: NOOK_HOST, NOOK_ORIGINS, NOOK_API_KEY, NOOK_KEEP_ALIVE, NOOK_NUM_PARALLEL,\n"
    "NOOK_MAX_QUEUE, NOOK_MAX_LOADED_MODELS, NOOK_CONTEXT_LENGTH, NOOK_KV_CACHE_TYPE,\n"
    "NOOK_MAX_CONNECTIONS. SIGINT or SIGTERM stops it after requests in flight finish.",
    NULL, 0,
};

int cli_serve(int argc, char **argv) {
    int npos = 0;
    int rc = cli_parse(&k_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos) return cli_fail(CLI_EUSAGE, "serve takes no arguments (configure it with NOOK_HOST etc.)");
    cli_install_log(getenv("NOOK_DEBUG") != NULL);

    srv_config cfg;
    nook_error err;
    if (srv_config_from_env(&cfg, &err)) {
        srv_config_clear(&cfg);
        return cli_fail(CLI_EUSAGE, "%s", err.msg);
    }
    /* Signals are taken by this thread only (sigwait below): every server thread
     * inherits the blocked mask. A client that disconnects must not kill us. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Every request allocates buffers sized by the vocabulary (its generation's sampler
     * and work arrays: megabytes for a 152k vocabulary). Above glibc's dynamic mmap
     * threshold they are fresh mapped pages each time, and on a VM every fresh page
     * costs microseconds (docs/design.md): milliseconds per request, measured as the
     * server's overhead (docs/performance.md). Blocks under 32 MiB now come from the
     * heap and stay there for the next request; bigger ones (KV caches) are still
     * mapped and returned to the system when freed. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);

    srv_server *srv = NULL;
    if (srv_start(&cfg, &srv, &err)) {
        srv_config_clear(&cfg);
        return cli_fail(CLI_EFAIL, "%s", err.msg);
    }
    fprintf(stderr, "nook: Listening on %s:%d (version %s)\n", cfg.host, srv_port(srv), NOOK_VERSION);
    srv_config_clear(&cfg);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "nook: %s: finishing requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    srv_stop(srv, 30000);
    return CLI_OK;
}
