/* embed.c: a program that uses nook as a library through the installed nook.h and
 * libnook (built by tests/cli/model_install.sh with `pkg-config --cflags --libs nook`).
 * Usage: embed MODEL PROMPT N: prints N greedy tokens after PROMPT. */
#include <nook.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: embed MODEL PROMPT N\n"); return 2; }
    nook_error err;
    nook_model *m = NULL;
    nook_model_params mp = nook_model_default_params();
    if (nook_model_load(argv[1], &mp, &m, &err) != NOOK_OK) { fprintf(stderr, "embed: %s\n", err.msg); return 1; }
    nook_session *s = NULL;
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = 256;
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) { fprintf(stderr, "embed: %s\n", err.msg); return 1; }
    nook_token toks[256];
    size_t n = 0;
    if (nook_tokenize(m, argv[2], strlen(argv[2]), true, false, toks, 256, &n, &err) != NOOK_OK ||
        nook_session_decode(s, toks, (int)n, NULL, &err) != NOOK_OK) {
        fprintf(stderr, "embed: %s\n", err.msg);
        return 1;
    }
    nook_detok d;
    nook_detok_init(&d, m, false);
    const int n_vocab = nook_model_n_vocab(m);
    for (int i = 0; i < atoi(argv[3]); i++) {
        const float *lg = nook_session_logits(s);
        nook_token best = 0;
        for (int t = 1; t < n_vocab; t++) if (lg[t] > lg[best]) best = t;
        char buf[1024];
        nook_detok_push(&d, best, buf, sizeof buf);
        fputs(buf, stdout);
        if (nook_session_decode(s, &best, 1, NULL, &err) != NOOK_OK) { fprintf(stderr, "embed: %s\n", err.msg); return 1; }
    }
    putchar('\n');
    nook_session_free(s);
    nook_model_free(m);
    return 0;
}
