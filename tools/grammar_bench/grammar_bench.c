/*
 * grammar_bench: what constrained decoding costs, without the model's forward pass.
 *
 *   grammar_bench MODEL.gguf (--schema FILE | --grammar FILE | --json) [--steps N] [--seed S]
 *   grammar_bench --print --schema FILE      the GBNF nook writes for a schema
 *
 * Builds the vocabulary trie from the model's tokenizer, then runs N steps of a
 * random walk through the grammar (each step: the token mask applied to a logits
 * vector of flat random values, a draw among the allowed tokens, accept), restarting
 * when the grammar ends. Prints the trie build time, the time per step (mean, and
 * the share spent on masks computed vs taken from the cache) and the cache counters.
 */
#include "grammar/grammar.h"
#include "engine/engine.h"
#include "nook.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--print") && !strcmp(argv[2], "--schema")) {
        char *txt = NULL, *g = NULL;
        size_t n;
        nook_error e = { 0 };
        if (nk_read_file(argv[3], &txt, &n, &e) != NOOK_OK || nk_schema_to_gbnf(txt, n, &g, &e) != NOOK_OK) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        fputs(g, stdout);
        nk_free(g); nk_free(txt);
        return 0;
    }
    if (argc < 3) { fprintf(stderr, "usage: grammar_bench MODEL.gguf (--schema F | --grammar F | --json) [--steps N] [--seed S]\n"); return 2; }
    const char *schema = NULL, *gfile = NULL;
    bool json = false;
    int steps = 2000;
    unsigned long long seed = 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--schema") && i + 1 < argc) schema = argv[++i];
        else if (!strcmp(argv[i], "--grammar") && i + 1 < argc) gfile = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    }
    nook_error e = { 0 };
    nook_model_params mp = nook_model_default_params();
    mp.vocab_only = true;
    nook_model *m = NULL;
    if (nook_model_load(argv[1], &mp, &m, &e) != NOOK_OK) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double t0 = nk_time_ms();
    nk_gvocab *v = NULL;
    if (nk_constrain_vocab(m, &v, &e) != NOOK_OK) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double t_trie = nk_time_ms() - t0;
    char *text = NULL;
    size_t tl;
    if ((schema || gfile) && nk_read_file(schema ? schema : gfile, &text, &tl, &e) != NOOK_OK) { fprintf(stderr, "%s\n", e.msg); return 1; }
    nk_constrain *c = NULL;
    if (nk_constrain_new(v, gfile ? text : NULL, schema ? text : json ? "json" : NULL, &c, &e) != NOOK_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    int nv = nook_model_n_vocab(m);
    float *base = malloc((size_t)nv * sizeof(float)), *lg = malloc((size_t)nv * sizeof(float));
    uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < nv; i++) { r = r * 6364136223846793005ull + 1442695040888963407ull; base[i] = (float)((r >> 40) % 1000) / 1000.0f; }
    double t_mask = 0, worst = 0;
    nk_grammar_stats acc = { 0 };
    int ends = 0;
    t0 = nk_time_ms();
    for (int s = 0; s < steps; s++) {
        memcpy(lg, base, (size_t)nv * sizeof(float));
        double a = nk_time_ms();
        if (nk_constrain_mask(c, lg, nv, &e) != NOOK_OK) { fprintf(stderr, "step %d: %s\n", s, e.msg); return 1; }
        double b = nk_time_ms() - a;
        t_mask += b;
        if (b > worst) worst = b;
        /* draw: the best of a few random allowed candidates (flat distribution) */
        int tok = -1;
        for (int k = 0; k < 64 && tok < 0; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            int t = (int)((r >> 33) % (uint64_t)nv);
            if (lg[t] != -INFINITY) tok = t;
        }
        if (tok < 0) for (int t = 0; t < nv && tok < 0; t++) if (lg[t] != -INFINITY) tok = t;
        if (nk_constrain_accept(c, tok, &e) != NOOK_OK) { fprintf(stderr, "accept: %s\n", e.msg); return 1; }
        if (nook_token_is_eog(m, tok)) {
            ends++;
            nk_grammar_stats gs;
            nk_constrain_stats(c, &gs);
            acc.masks_computed += gs.masks_computed; acc.mask_hits += gs.mask_hits;
            acc.trie_nodes_visited += gs.trie_nodes_visited; acc.states += gs.states; acc.transitions += gs.transitions;
            nk_constrain_free(c);
            nk_constrain_new(v, gfile ? text : NULL, schema ? text : json ? "json" : NULL, &c, &e);
        }
    }
    double total = nk_time_ms() - t0;
    nk_grammar_stats st;
    nk_constrain_stats(c, &st);
    printf("vocab %d tokens: trie built in %.1f ms\n", nv, t_trie);
    printf("%d steps (%d complete documents): %.3f ms/step total, %.3f ms/step in the mask (worst %.2f ms)\n",
           steps, ends, total / steps, t_mask / steps, worst);
    acc.masks_computed += st.masks_computed; acc.mask_hits += st.mask_hits;
    acc.trie_nodes_visited += st.trie_nodes_visited; acc.states += st.states; acc.transitions += st.transitions;
    printf("all documents: %ld transitions computed, %ld states, %ld masks computed, %ld cache hits, %ld trie nodes visited (%.0f per mask)\n",
           acc.transitions, acc.states, acc.masks_computed, acc.mask_hits, acc.trie_nodes_visited,
           acc.masks_computed ? (double)acc.trie_nodes_visited / (double)acc.masks_computed : 0.0);
    printf("last grammar: %ld states, %ld nodes, %ld masks computed, %ld cache hits, %ld trie nodes visited, %ld flushes\n",
           st.states, st.nodes, st.masks_computed, st.mask_hits, st.trie_nodes_visited, st.flushes);
    nk_constrain_free(c);
    nk_gvocab_free(v);
    nook_model_free(m);
    free(base); free(lg); nk_free(text);
    return 0;
}
