/*
 * randomize: `randomize IN.gguf OUT.gguf [SEED]` writes a copy of a GGUF whose F32
 * weights are replaced by seeded random values (norm weights 1, others N(0, 0.02)) and
 * whose metadata and tokenizer are byte for byte the same: a random-weight model of
 * exactly the input's vocabulary. The router's confidence test compares stories260K
 * with its randomized copy (tests/router/model_signals.c). Only all-F32 models (like
 * stories260K) are supported; others are refused.
 */
#include "base/base.h"
#include "gguf/gguf.h"
#include "tensor/types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_s;
static double urand(void) {
    g_s ^= g_s << 13; g_s ^= g_s >> 7; g_s ^= g_s << 17;
    return ((double)(g_s >> 11) + 0.5) / 9007199254740992.0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: randomize IN.gguf OUT.gguf [SEED]\n"); return 2; }
    g_s = argc > 3 ? strtoull(argv[3], NULL, 10) * 2654435761ull + 1 : 88172645463325252ull;
    char *data = NULL;
    size_t len = 0;
    nook_error err;
    gguf_file *f = NULL;
    if (nk_read_file(argv[1], &data, &len, &err) || gguf_parse(data, len, &f, &err)) {
        fprintf(stderr, "randomize: %s\n", err.msg);
        return 1;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (t->type != NK_TYPE_F32) {
            fprintf(stderr, "randomize: tensor %.*s is not F32\n", (int)t->name.len, t->name.ptr);
            return 1;
        }
        float *w = (float *)(data + f->data_offset + t->offset);
        bool norm = t->n_dims == 1;
        for (uint64_t k = 0; k < t->nbytes / 4; k++) {
            double z = sqrt(-2 * log(urand())) * cos(2 * M_PI * urand());
            w[k] = norm ? 1.0f : (float)(0.02 * z);
        }
    }
    gguf_free(f);
    if (nk_write_file_atomic(argv[2], data, len, &err)) { fprintf(stderr, "randomize: %s\n", err.msg); return 1; }
    nk_free(data);
    return 0;
}
