/*
 * bench_vocab.c: nk_vocab_load time for GGUF files (the tokenizer part of model load,
 * on the time-to-first-token path), best of R loads in thread CPU time (the machine is
 * shared; the minimum filters out time stolen by other processes), plus a fingerprint
 * of the loaded vocabulary and of the tokenization of a fixed text, so that a change
 * to the loader can be checked to give the same vocabulary.
 *
 * Build and run (from the repository root, after building build/):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/bench_vocab.c build/libnook_tokenizer.a \
 *      build/libnook_gguf.a build/libnook_tensor.a build/libnook_base.a -lpcre2-8 -lutf8proc -lm -lpthread -o /tmp/bench_vocab
 *   /tmp/bench_vocab [-r REPS] [-n] MODEL.gguf...     (-n: no fingerprint, for profiling)
 * Prints per file: the first load's ms and page faults (a fresh process: what a real start pays, with
 * the one-time table setup and fresh-memory page faults; run it a few times), best and
 * median of the rest, token/merge counts, the fingerprint.
 */
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double thread_cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_minflt;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 0x100000001b3ull; }
    return h;
}

/* Everything observable through the accessors, hashed. */
static uint64_t fingerprint(const nk_vocab *v, const gguf_file *gf) {
    static const char *const texts[] = {
        "Hello world! 123 4567 It's a test.\n\n  indented\tand tabs",
        "<|im_start|>user\nhi<|im_end|><start_of_turn>model<|begin_of_text|>",
        "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80 caf\xc3\xa9 na\xc3\xafve",
        "    def f(x):\n        return x**2  # comment\n",
    };
    uint64_t h = 0xcbf29ce484222325ull;
    int n = nk_vocab_n_tokens(v);
    for (nook_token t = 0; t < n; t++) {
        const char *s = nk_vocab_text(v, t);
        h = fnv(h, s, strlen(s) + 1);
        int ty = nk_vocab_token_type(v, t), at = nk_vocab_token_attr(v, t);
        float sc = nk_vocab_score(v, t);
        bool eog = nk_vocab_is_eog(v, t);
        h = fnv(h, &ty, sizeof ty); h = fnv(h, &at, sizeof at); h = fnv(h, &sc, sizeof sc); h = fnv(h, &eog, 1);
    }
    nook_token ids[] = { nk_vocab_bos(v), nk_vocab_eos(v), nk_vocab_eot(v), nk_vocab_unk(v), nk_vocab_nl(v),
                        nk_vocab_pad(v), nk_vocab_n_merges(v) };
    h = fnv(h, ids, sizeof ids);
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        nook_token out[256];
        size_t m = 0;
        for (int ps = 0; ps < 2; ps++) {
            if (nk_vocab_tokenize(v, texts[k], strlen(texts[k]), true, ps, out, 256, &m, NULL) == NOOK_OK)
                h = fnv(h, out, m * sizeof *out);
            else h = fnv(h, "ERR", 3);
        }
    }
    /* the rank of every merge as the vocabulary reports it */
    const gguf_kv *mk = gguf_find(gf, "tokenizer.ggml.merges");
    if (mk && mk->val.type == GGUF_TYPE_ARRAY && mk->val.v.arr.type == GGUF_TYPE_STRING) {
        const uint8_t *p = mk->val.v.arr.data;
        char buf[1024];
        for (uint64_t i = 0; i < mk->val.v.arr.count; i++) {
            gguf_str s;
            p = gguf_arr_str_next(p, &s);
            if (s.len >= sizeof buf) continue;
            memcpy(buf, s.ptr, s.len);
            buf[s.len] = 0;
            char *sp = s.len > 1 ? strchr(buf + 1, ' ') : NULL;
            if (!sp) continue;
            *sp = 0;
            int r = nk_vocab_merge_rank(v, buf, sp + 1);
            h = fnv(h, &r, sizeof r);
        }
    }
    return h;
}

int main(int argc, char **argv) {
    int reps = 15, a = 1;
    bool fp_on = true;
    for (;;) {
        if (a + 1 < argc && !strcmp(argv[a], "-r")) { reps = atoi(argv[a + 1]); a += 2; }
        else if (a < argc && !strcmp(argv[a], "-n")) { fp_on = false; a++; }
        else break;
    }
    if (a >= argc || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench_vocab [-r REPS] [-n] MODEL.gguf...\n");
        return 2;
    }
    for (; a < argc; a++) {
        nook_error err;
        nk_map map;
        gguf_file *gf;
        if (nk_map_file_huge(argv[a], &map, &err) || gguf_parse(map.data, map.size, &gf, &err)) {
            fprintf(stderr, "%s: %s\n", argv[a], err.msg);
            return 1;
        }
        double *ms = malloc((size_t)reps * sizeof *ms);
        uint64_t fp = 0;
        int nt = 0, nm = 0;
        long faults = 0;
        for (int r = 0; r < reps; r++) {
            nk_vocab *v;
            long f0 = minflt();
            double t0 = thread_cpu_ms();
            nook_status st = nk_vocab_load(gf, &v, &err);
            ms[r] = thread_cpu_ms() - t0;
            if (r == 0) faults = minflt() - f0;
            if (st) { fprintf(stderr, "%s: %s\n", argv[a], err.msg); return 1; }
            if (r == 0) { fp = fp_on ? fingerprint(v, gf) : 0; nt = nk_vocab_n_tokens(v); nm = nk_vocab_n_merges(v); }
            nk_vocab_free(v);
        }
        double first = ms[0];
        qsort(ms, (size_t)reps, sizeof *ms, cmp_d);
        const char *base = strrchr(argv[a], '/');
        printf("%-28s first %7.2f (%5ld faults)  best %7.2f  median %7.2f ms  tokens %6d merges %6d  fp %016llx\n",
               base ? base + 1 : argv[a], first, faults, ms[0], ms[reps / 2], nt, nm, (unsigned long long)fp);
        free(ms);
        gguf_free(gf);
        nk_unmap(&map);
    }
    return 0;
}
