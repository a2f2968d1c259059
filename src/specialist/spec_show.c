/*
 * spec_show.c: what a specialist is, as Ollama's /api/show describes a model; the one
 * description both `nook show NAME` (src/cli/cli_classify.c prints it) and the server's
 * POST /api/show (src/server/routes_specialist.c) give.
 *
 * model_info uses the file's own metadata keys (spec_file.c), as Ollama's model_info
 * repeats a GGUF's keys; the large arrays (ids, idf, weights, biases) are left out, as
 * Ollama leaves out the tokenizer's.
 */
#include "specialist/specialist.h"

#include <jansson.h>
#include <stdio.h>

/* "1.2K", "34M": Ollama's parameter_size style. */
static void human_count(uint64_t n, char *buf, size_t cap) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.1fB", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.1fM", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, cap, "%.1fK", (double)n / 1e3);
    else snprintf(buf, cap, "%llu", (unsigned long long)n);
}

void *nk_spec_show_json(const nk_spec *s, const char *ref) {
    json_t *labels = json_array();
    if (!labels) return NULL;
    for (int c = 0; c < s->k; c++) json_array_append_new(labels, json_string(s->labels[c]));
    const uint64_t params = (uint64_t)s->d * (uint64_t)s->k + (uint64_t)s->k;
    char psize[32], mf[1400];
    human_count(params, psize, sizeof psize);
    snprintf(mf, sizeof mf,
             "# %s is a nook specialist (a text classifier), not a generative model: "
             "nook classify %s TEXT, or POST /api/classify\n", ref ? ref : s->name, ref ? ref : s->name);
    json_t *info = json_pack(
        "{s:s, s:s, s:I, s:o, s:i, s:f, s:f, s:I, s:I, s:i, s:i, s:i, s:i, s:b, s:i, s:s, s:i, s:f, s:f, s:f, s:f}",
        "general.architecture", "nook-specialist",
        "general.name", s->name,
        "general.parameter_count", (json_int_t)params,
        "specialist.labels", labels,
        "specialist.label_count", s->k,
        "specialist.threshold", s->threshold,
        "specialist.temperature", s->temperature,
        "specialist.columns", (json_int_t)s->d,
        "specialist.text_columns", (json_int_t)s->d_text,
        "specialist.features.word_max", (int)s->feat.word_max,
        "specialist.features.char_min", (int)s->feat.char_min,
        "specialist.features.char_max", (int)s->feat.char_max,
        "specialist.features.hash_bits", (int)s->feat.hash_bits,
        "specialist.features.idf", (int)s->feat.idf,
        "specialist.embed_dim", (int)s->embed_dim,
        "specialist.base_model", s->base_model ? s->base_model : "",
        "specialist.n_train", (int)s->n_train,
        "specialist.cv.c", s->cv_C,
        "specialist.cv.macro_f1", s->cv_macro_f1,
        "specialist.cv.ece_raw", s->cv_ece_raw,
        "specialist.cv.ece_cal", s->cv_ece_cal);
    if (!info) return NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:[s], s:s, s:s}, s:o, s:[s]}",
                          "license", "", "modelfile", mf, "parameters", "", "template", "", "system", "",
                          "details", "parent_model", s->base_model ? s->base_model : "", "format", "gguf", "family",
                          "specialist", "families", "specialist", "parameter_size", psize, "quantization_level", "F32",
                          "model_info", info, "capabilities", "classify");
    return o;
}
