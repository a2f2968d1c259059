/*
 * cli_embed.c: `nook embed MODEL TEXT...`: embeddings of texts as JSON, shaped as
 * Ollama's /api/embed response: {"model": ..., "embeddings": [[...], ...]}, one vector
 * per text in order, L2-normalised (--raw: as pooled). Without TEXT arguments the
 * texts are read from stdin, one per line (empty lines skipped). A thin user of
 * nook_session_embed.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct embed_opts {
    int threads, ctx;
    bool raw, no_mmap, verbose;
    const char *pooling;
} embed_opts;

static embed_opts o;

static const cli_opt k_opts[] = {
    { "threads", 't', OPT_INT,  &o.threads, 0, 1024, "N", "worker threads (0: all cores) [0]" },
    { "ctx",     'c', OPT_INT,  &o.ctx, 0, 1 << 24, "N", "tokens per text at most (0: the model's, up to 8192) [0]" },
    { "pooling", 0,   OPT_STR,  &o.pooling, 0, 0, "P", "mean, cls or last (default: the model's pooling_type, else mean)" },
    { "raw",     0,   OPT_FLAG, &o.raw, 0, 0, NULL, "do not L2-normalise the vectors" },
    { "no-mmap", 0,   OPT_FLAG, &o.no_mmap, 0, 0, NULL, "copy the model into private memory instead of mapping it" },
    { "verbose", 'v', OPT_FLAG, &o.verbose, 0, 0, NULL, "log what the library logs" },
};

static const cli_verb_info k_info = {
    "embed", "MODEL [TEXT...]", "Print embeddings of texts as JSON (stdin: one text per line)",
    k_opts, (int)NK_ARRAY_LEN(k_opts),
};

/* JSON string body of s (quotes, backslashes and control bytes escaped) */
static void put_json_str(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

int cli_embed(int argc, char **argv) {
    o = (embed_opts){ 0 };
    int n_pos = 0;
    int rc = cli_parse(&k_info, argc, argv, &n_pos);
    if (rc != CLI_OK) return rc;
    if (n_pos < 1) return cli_fail(CLI_EUSAGE, "embed takes a MODEL and texts (see 'nook embed --help')");
    nook_pooling pooling = NOOK_POOLING_UNSPECIFIED;
    if (o.pooling) {
        if (!strcmp(o.pooling, "mean")) pooling = NOOK_POOLING_MEAN;
        else if (!strcmp(o.pooling, "cls")) pooling = NOOK_POOLING_CLS;
        else if (!strcmp(o.pooling, "last")) pooling = NOOK_POOLING_LAST;
        else return cli_fail(CLI_EUSAGE, "--pooling must be mean, cls or last (got '%s')", o.pooling);
    }
    cli_install_log(o.verbose);

    /* the texts: arguments, else stdin lines */
    char *input = NULL;
    const char **texts = NULL;
    int n_texts = 0;
    if (n_pos > 1) {
        texts = nk_alloc_array((size_t)(n_pos - 1), sizeof *texts);
        if (!texts) return cli_fail(CLI_EFAIL, "out of memory");
        for (int i = 1; i < n_pos; i++) texts[n_texts++] = argv[i];
    } else {
        size_t len = 0;
        input = cli_read_stream(stdin, false, &len);
        if (!input) return cli_fail(CLI_EFAIL, "cannot read stdin");
        size_t lines = 1;
        for (size_t i = 0; i < len; i++) lines += input[i] == '\n';
        texts = nk_alloc_array(lines, sizeof *texts);
        if (!texts) {
            nk_free(input);
            return cli_fail(CLI_EFAIL, "out of memory");
        }
        for (char *p = input, *e; p && *p; p = e ? e + 1 : NULL) {
            e = strchr(p, '\n');
            if (e) *e = 0;
            if (e && e > p && e[-1] == '\r') e[-1] = 0;
            if (*p) texts[n_texts++] = p;
        }
        if (!n_texts) {
            nk_free(texts);
            nk_free(input);
            return cli_fail(CLI_EUSAGE, "no texts: give them as arguments or one per line on stdin");
        }
    }

    nook_model *m = cli_load_model(argv[0], o.threads, o.no_mmap);
    float *out = NULL;
    nook_session *s = NULL;
    rc = CLI_EFAIL;
    if (!m) goto done;
    const int n_embd = nook_model_n_embd(m);
    nook_session_params sp = nook_session_default_params();
    sp.embeddings = true;
    sp.pooling = pooling;
    sp.n_threads = o.threads;
    sp.n_seq_max = NK_MIN(n_texts, 16);
    sp.n_ctx = o.ctx ? o.ctx : NK_MIN(nook_model_n_ctx_train(m), 8192);
    sp.n_batch = NK_MAX(512, sp.n_ctx);
    nook_error err = { 0 };
    out = nk_alloc_array((size_t)n_texts * (size_t)n_embd, sizeof *out);
    if (!out) {
        cli_fail(CLI_EFAIL, "out of memory");
        goto done;
    }
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) {
        cli_fail(CLI_EFAIL, "cannot create a session: %s", err.msg);
        goto done;
    }
    if (nook_session_pooling(s) == NOOK_POOLING_NONE) {
        cli_fail(CLI_EUSAGE, "the model's pooling_type is none: choose --pooling mean, cls or last");
        goto done;
    }
    if (nook_session_embed(s, texts, n_texts, o.raw, false, out, NULL, &err) != NOOK_OK) {
        cli_fail(CLI_EFAIL, "embedding failed: %s", err.msg);
        goto done;
    }
    const char *slash = strrchr(argv[0], '/');
    printf("{\"model\":");
    put_json_str(slash ? slash + 1 : argv[0]);
    printf(",\"embeddings\":[");
    for (int i = 0; i < n_texts; i++) {
        putchar(i ? ',' : '[');
        if (i) putchar('[');
        for (int d = 0; d < n_embd; d++) printf("%s%.9g", d ? "," : "", (double)out[(size_t)i * (size_t)n_embd + d]);
        putchar(']');
    }
    printf("]}\n");
    rc = fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_EFAIL, "cannot write the output");
done:
    nook_session_free(s);
    nook_model_free(m);
    nk_free(out);
    nk_free((void *)texts);
    nk_free(input);
    return rc;
}
