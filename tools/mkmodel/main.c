/*
 * mkmodel: write a synthetic GGUF (random weights, real shapes and tokenizer).
 *
 *   mkmodel PRESET TYPE OUT.gguf [--seed N] [--threads N] [--models DIR] [--layers N]
 *   mkmodel --quantize IN.gguf OUT.gguf TYPE [--threads N]
 *   mkmodel --list
 *
 * TYPE is a file type (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_S Q4_K_M Q5_K_S
 * Q5_K_M Q6_K). DIR holds hf/<family>/tokenizer.json (default $NOOK_TEST_MODELS, else
 * ../shared/models). --layers N keeps the preset's shapes with N of its layers (a file
 * for measurements that depend on one layer's shape, not on the depth, made in a
 * fraction of the time). A developer tool: it prints, the library does not.
 */
#include "convert/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void) {
    fprintf(stderr, "usage: mkmodel PRESET TYPE OUT.gguf [--seed N] [--threads N] [--models DIR] [--layers N]\n"
                    "       mkmodel --quantize IN.gguf OUT.gguf TYPE [--threads N]\n"
                    "       mkmodel --list\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (const char *const *n = nk_synth_preset_names(); *n; n++) puts(*n);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "--quantize") == 0) {
        int threads = 0;
        if (argc == 7 && strcmp(argv[5], "--threads") == 0) threads = atoi(argv[6]);
        else if (argc != 5) return usage();
        nook_error err = { 0 };
        nk_tensor_init();
        double t0 = nk_time_ms();
        if (nk_quantize_file(argv[2], argv[3], argv[4], threads, &err)) {
            fprintf(stderr, "mkmodel: %s\n", err.msg);
            return 1;
        }
        fprintf(stderr, "mkmodel: quantized %s -> %s (%s) in %.1f s\n", argv[2], argv[3], argv[4],
                (nk_time_ms() - t0) / 1000.0);
        return 0;
    }
    if (argc < 4) return usage();
    const char *models = getenv("NOOK_TEST_MODELS");
    if (!models || !*models) models = "../shared/models";
    unsigned long long seed = 1;
    int threads = 0, layers = 0;
    for (int i = 4; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[++i], NULL, 0);
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--models") == 0) models = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--layers") == 0) layers = atoi(argv[++i]);
        else return usage();
    }
    nook_error err = { 0 };
    nk_synth_params p;
    char tok[4096];
    if (nk_synth_preset(argv[1], models, tok, sizeof tok, &p, &err)) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return 1;
    }
    p.ftype = nk_ftype_from_name(argv[2]);
    if (p.ftype < 0) {
        fprintf(stderr, "mkmodel: unknown type '%s'\n", argv[2]);
        return 1;
    }
    if (layers > 0 && (uint32_t)layers < p.n_layer) p.n_layer = (uint32_t)layers;
    p.seed = seed;
    p.n_threads = threads;
    nk_tensor_init();
    double t0 = nk_time_ms();
    if (nk_synth_write(&p, argv[3], &err)) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "mkmodel: wrote %s (%s %s, seed %llu) in %.1f s\n", argv[3], argv[1], argv[2], seed,
            (nk_time_ms() - t0) / 1000.0);
    return 0;
}
