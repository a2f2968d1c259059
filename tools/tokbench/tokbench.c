/*
 * tokbench: tokenizer load time and throughput.
 *
 *   tokbench --gguf MODEL.gguf [--text FILE] [--reps N]
 *   tokbench --llama3 DIR [--text FILE] [--reps N] [--write-gguf OUT.gguf]
 *   ... [--dump IDS.txt]   (one id per line, to diff against llama.cpp)
 *
 * --llama3 builds the Llama 3 vocabulary from DIR/encoder.json + DIR/vocab.bpe (see
 * tests/tokenizer/tt_gpt2_vocab.h); --write-gguf saves it, e.g. for llama.cpp. Prints
 * the vocab load time, the best-of-N tokenization time of the text (add_special off,
 * parse_special off), MB/s, the token count, and whether detokenizing gives the text back.
 */
#include "tokenizer/tokenizer.h"
#include "../../tests/tokenizer/tt_gpt2_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this process in ms: the machine is shared, so wall time is noisy. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int die(const char *what, const nook_error *e) {
    fprintf(stderr, "tokbench: %s: %s\n", what, e ? e->msg : "");
    return 1;
}

int main(int argc, char **argv) {
    const char *gguf = NULL, *l3 = NULL, *text_path = NULL, *write = NULL, *dump = NULL;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gguf") && i + 1 < argc) gguf = argv[++i];
        else if (!strcmp(argv[i], "--llama3") && i + 1 < argc) l3 = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc) text_path = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--write-gguf") && i + 1 < argc) write = argv[++i];
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else { fprintf(stderr, "usage: tokbench (--gguf F | --llama3 DIR [--write-gguf OUT]) [--text FILE] [--reps N]\n"); return 2; }
    }
    if (!gguf == !l3) { fprintf(stderr, "tokbench: give exactly one of --gguf, --llama3\n"); return 2; }
    nook_error err;
    nk_map map = { 0 };
    uint8_t *img = NULL; uint64_t img_len = 0;
    if (gguf) {
        if (nk_map_file(gguf, false, &map, &err)) return die(gguf, &err);
        img_len = map.size;
    } else {
        char enc[1024], bpe[1024];
        snprintf(enc, sizeof enc, "%s/encoder.json", l3);
        snprintf(bpe, sizeof bpe, "%s/vocab.bpe", l3);
        if (tt_build_llama3_gguf(enc, bpe, &img, &img_len, &err)) return die(l3, &err);
        if (write && nk_write_file_atomic(write, img, img_len, &err)) return die(write, &err);
    }
    gguf_file *gf;
    if (gguf_parse(gguf ? map.data : img, img_len, &gf, &err)) return die("gguf", &err);
    nk_vocab *v;
    double t0 = nk_time_ms(), c0 = cpu_ms();
    if (nk_vocab_load(gf, &v, &err)) return die("vocab", &err);
    double t_load = nk_time_ms() - t0, c_load = cpu_ms() - c0;
    printf("vocab: %s/%s, %d tokens, %d merges, load %.1f ms wall, %.1f ms cpu\n", nk_vocab_model(v), nk_vocab_pre(v),
           nk_vocab_n_tokens(v), nk_vocab_n_merges(v), t_load, c_load);
    if (text_path) {
        char *text; size_t len;
        if (nk_read_file(text_path, &text, &len, &err)) return die(text_path, &err);
        size_t cap = len + 16, n = 0;
        nook_token *toks = malloc(cap * sizeof *toks);
        double best = 1e30, bestc = 1e30;
        for (int r = 0; r < reps; r++) {
            double a = nk_time_ms(), ac = cpu_ms();
            if (nk_vocab_tokenize(v, text, len, false, false, toks, cap, &n, &err)) return die("tokenize", &err);
            double b = nk_time_ms() - a, bc = cpu_ms() - ac;
            if (b < best) best = b;
            if (bc < bestc) bestc = bc;
        }
        printf("text: %zu bytes -> %zu tokens; best of %d: %.1f ms wall = %.2f MB/s, %.1f ms cpu = %.2f MB/s\n",
               len, n, reps, best, (double)len / 1e6 / (best / 1e3), bestc, (double)len / 1e6 / (bestc / 1e3));
        /* round trip: the concatenated pieces must be the text (llama_detokenize's
         * clean_spaces pass would legitimately change " ," etc., so pieces are used) */
        char *back = malloc(len + 64), piece[1024];
        size_t bl = 0;
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            int k = nk_vocab_piece(v, toks[i], false, piece, sizeof piece);
            if (k < 0 || (size_t)k > sizeof piece || bl + (size_t)k > len) { ok = false; break; }
            memcpy(back + bl, piece, (size_t)k);
            bl += (size_t)k;
        }
        ok = ok && bl == len && memcmp(back, text, len) == 0;
        printf("round trip (pieces): %s\n", ok ? "identical" : "DIFFERENT");
        if (dump) {
            FILE *f = fopen(dump, "w");
            if (!f) { perror(dump); return 1; }
            for (size_t i = 0; i < n; i++) fprintf(f, "%d\n", toks[i]);
            fclose(f);
        }
        free(back); free(toks); nk_free(text);
    }
    nk_vocab_free(v);
    gguf_free(gf);
    nk_free(img);
    nk_unmap(&map);
    return 0;
}
