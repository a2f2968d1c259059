/*
 * synth.c: synthetic models. A preset gives the exact hyperparameters of a real model
 * (keys and tensor shapes as convert_hf_to_gguf.py writes them), the tokenizer is the
 * real one imported from a Hugging Face folder, and the weights are seeded noise
 * scaled so that activations stay finite and the logits have a useful spread:
 *
 *   linear weights  ~ N(0, 1/fan_in): a layer keeps its input's RMS;
 *   norm weights    ~ 1 + N(0, 0.05^2) (Gemma's stored norms include the +1 already;
 *                     its post-attention/post-FFN norms ~ 8, see GEMMA_POST_NORM);
 *   token_embd / output rows ~ N(0, (3/sqrt(n_embd))^2): the logits of a unit-RMS hidden
 *                     state then have a standard deviation near 3, far from flat and far
 *                     from saturated.
 *
 * "Normal" here is an Irwin-Hall sum of four uniforms (bounded at +-3.5 sigma: no
 * outliers to blow up a layer, and no libm in the hot loop). Each row is seeded from
 * (seed, tensor name, row), so the bytes depend neither on the thread count nor on the
 * order tensors are written in.
 */
#include "convert/convert.h"
#include "tokenizer/hf_import.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---- presets --------------------------------------------------------------------- */

typedef struct {
    const char *name, *tok;   /* tok: folder under <models>/hf */
    nk_synth_arch arch;
    uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    bool tied;
    float rope_base, rms_eps;
    uint32_t n_swa;
    float rope_scale;         /* llama3 rope_freqs factor (0: none) */
} preset;

static const preset PRESETS[] = {
    /* real shapes (config.json of each model) */
    { "qwen3-0.6b",  "qwen3",  NK_SYNTH_QWEN3,  1024, 28, 16, 8, 128, 3072, 151936, 40960, true,  1e6f, 1e-6f, 0, 0 },
    { "qwen3-8b",    "qwen3",  NK_SYNTH_QWEN3,  4096, 36, 32, 8, 128, 12288, 151936, 40960, false, 1e6f, 1e-6f, 0, 0 },
    { "llama3.2-1b", "llama3", NK_SYNTH_LLAMA,  2048, 16, 32, 8, 64, 8192, 128256, 131072, true, 500000.0f, 1e-5f, 0, 32.0f },
    { "gemma3-1b",   "gemma3", NK_SYNTH_GEMMA3, 1152, 26, 4, 1, 256, 6912, 262144, 32768, true, 1e6f, 1e-6f, 512, 0 },
    /* tiny variants for parity tests: n_embd a multiple of 256 so K-quants apply */
    { "qwen3-tiny",  "qwen3",  NK_SYNTH_QWEN3,  256, 4, 4, 2, 128, 768, 151936, 40960, true, 1e6f, 1e-6f, 0, 0 },
    { "llama3-tiny", "llama3", NK_SYNTH_LLAMA,  256, 4, 8, 2, 32, 768, 128256, 131072, true, 500000.0f, 1e-5f, 0, 32.0f },
    { "gemma3-tiny", "gemma3", NK_SYNTH_GEMMA3, 256, 6, 4, 1, 64, 768, 262144, 32768, true, 1e6f, 1e-6f, 32, 0 },
    /* widths that are multiples of 32 but not of 256: exercises the K-quant fallbacks */
    { "qwen3-tiny-odd", "qwen3", NK_SYNTH_QWEN3, 320, 3, 5, 1, 64, 864, 151936, 40960, true, 1e6f, 1e-6f, 0, 0 },
};

static const char *const PRESET_NAMES[] = {
    "qwen3-0.6b", "qwen3-8b", "llama3.2-1b", "gemma3-1b",
    "qwen3-tiny", "llama3-tiny", "gemma3-tiny", "qwen3-tiny-odd", NULL
};

const char *const *nk_synth_preset_names(void) { return PRESET_NAMES; }

nook_status nk_synth_preset(const char *name, const char *models_dir, char *tok_buf, size_t cap,
                            nk_synth_params *p, nook_error *err) {
    for (size_t i = 0; i < NK_ARRAY_LEN(PRESETS); i++) {
        const preset *q = &PRESETS[i];
        if (!name || strcmp(name, q->name) != 0) continue;
        memset(p, 0, sizeof *p);
        p->preset = q->name;
        p->arch = q->arch;
        p->n_embd = q->n_embd; p->n_layer = q->n_layer; p->n_head = q->n_head;
        p->n_head_kv = q->n_head_kv; p->head_dim = q->head_dim; p->n_ff = q->n_ff;
        p->n_vocab = q->n_vocab; p->n_ctx = q->n_ctx; p->tied = q->tied;
        p->rope_base = q->rope_base; p->rms_eps = q->rms_eps;
        if (q->arch == NK_SYNTH_GEMMA3) {
            p->n_swa = q->n_swa;
            p->swa_pattern = 6;
            p->rope_base_swa = 10000.0f;
        }
        if (q->rope_scale > 0) {
            p->rope_scale_factor = q->rope_scale;
            p->rope_low_freq = 1.0f;
            p->rope_high_freq = 4.0f;
            p->rope_orig_ctx = 8192;
        }
        if (models_dir) {
            int n = snprintf(tok_buf, cap, "%s/hf/%s", models_dir, q->tok);
            if (n < 0 || (size_t)n >= cap)
                return nk_fail(err, NOOK_ERANGE, "tokenizer path for preset '%s' too long", name);
            p->tokenizer_dir = tok_buf;
        }
        p->ftype = NK_FTYPE_ALL_F32;
        p->seed = 1;
        return NOOK_OK;
    }
    return nk_fail(err, NOOK_ENOTFOUND, "unknown synthetic model preset '%s'", name ? name : "(null)");
}

static const char *arch_name(nk_synth_arch a) {
    switch (a) {
    case NK_SYNTH_LLAMA: return "llama";
    case NK_SYNTH_QWEN3: return "qwen3";
    case NK_SYNTH_GEMMA3: return "gemma3";
    }
    return NULL;
}

/* ---- the tensor plan ---------------------------------------------------------------- */

enum { W_EMBED, W_LINEAR, W_NORM, W_POST_NORM, W_ROPE_FREQS };

typedef struct {
    char name[GGUF_MAX_NAME];
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    int kind;
    uint32_t type;
} plan_tensor;

typedef struct {
    plan_tensor *t;
    size_t n, cap;
} plan;

static bool plan_add(plan *pl, int kind, uint64_t ne0, uint64_t ne1, const char *fmt, int layer) {
    if (pl->n == pl->cap) return false;
    plan_tensor *t = &pl->t[pl->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->kind = kind;
    t->ne[0] = ne0;
    t->ne[1] = ne1 ? ne1 : 1;
    t->ne[2] = t->ne[3] = 1;
    t->n_dims = ne1 ? 2 : 1;
    return true;
}

/* The tensors of the model, in the converter's per-layer order; nk_synth_write then
 * sorts them into llama.cpp's loader order (see plan_cmp). */
static bool build_plan(const nk_synth_params *p, plan *pl) {
    uint64_t E = p->n_embd, V = p->n_vocab, F = p->n_ff;
    uint64_t Q = (uint64_t)p->n_head * p->head_dim, KV = (uint64_t)p->n_head_kv * p->head_dim;
    bool ok = plan_add(pl, W_EMBED, E, V, "token_embd.weight", 0);
    if (p->rope_scale_factor > 0) ok &= plan_add(pl, W_ROPE_FREQS, p->head_dim / 2, 0, "rope_freqs.weight", 0);
    for (uint32_t il = 0; il < p->n_layer; il++) {
        int i = (int)il;
        ok &= plan_add(pl, W_NORM, E, 0, "blk.%d.attn_norm.weight", i);
        ok &= plan_add(pl, W_LINEAR, E, Q, "blk.%d.attn_q.weight", i);
        ok &= plan_add(pl, W_LINEAR, E, KV, "blk.%d.attn_k.weight", i);
        ok &= plan_add(pl, W_LINEAR, E, KV, "blk.%d.attn_v.weight", i);
        ok &= plan_add(pl, W_LINEAR, Q, E, "blk.%d.attn_output.weight", i);
        if (p->arch != NK_SYNTH_LLAMA) {
            ok &= plan_add(pl, W_NORM, p->head_dim, 0, "blk.%d.attn_q_norm.weight", i);
            ok &= plan_add(pl, W_NORM, p->head_dim, 0, "blk.%d.attn_k_norm.weight", i);
        }
        if (p->arch == NK_SYNTH_GEMMA3)
            ok &= plan_add(pl, W_POST_NORM, E, 0, "blk.%d.post_attention_norm.weight", i);
        ok &= plan_add(pl, W_NORM, E, 0, "blk.%d.ffn_norm.weight", i);
        ok &= plan_add(pl, W_LINEAR, E, F, "blk.%d.ffn_gate.weight", i);
        ok &= plan_add(pl, W_LINEAR, E, F, "blk.%d.ffn_up.weight", i);
        ok &= plan_add(pl, W_LINEAR, F, E, "blk.%d.ffn_down.weight", i);
        if (p->arch == NK_SYNTH_GEMMA3)
            ok &= plan_add(pl, W_POST_NORM, E, 0, "blk.%d.post_ffw_norm.weight", i);
    }
    ok &= plan_add(pl, W_NORM, E, 0, "output_norm.weight", 0);
    if (!p->tied) ok &= plan_add(pl, W_EMBED, E, V, "output.weight", 0);
    return ok;
}

/* Files are written in llama.cpp's loader order, the order llama-quantize writes: then
 * a synthetic F32 file quantized by llama-quantize (or nk_quantize_file) is byte for
 * byte the file written at that type directly. */
static int plan_cmp(const void *a, const void *b) {
    return nk_tensor_order_cmp(((const plan_tensor *)a)->name, ((const plan_tensor *)b)->name);
}

/* ---- weights -------------------------------------------------------------------------- */

static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t seed;
    uint64_t tensor;       /* hash of the name: each tensor gets its own stream */
    int kind;
    int64_t ne0;
    float std;
    const float *rope_freqs;
} fill_ctx;

/* Gemma scales its (tied) input embeddings by sqrt(n_embd), so with unit post-norms the
 * input token's own embedding dominates the final hidden state and every model just
 * repeats its input. Post-norm weights near 8 make the layers' contributions outweigh
 * it (self-logit about 1.7 standard deviations: an ordinary token). */
#define GEMMA_POST_NORM 8.0f

/* FNV-1a: a tensor's stream depends on its name, not on where it sits in the file. */
static uint64_t name_hash(const char *s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return h;
}

static void fill_row(void *vctx, int64_t row, float *dst) {
    const fill_ctx *c = vctx;
    if (c->kind == W_ROPE_FREQS) {
        memcpy(dst, c->rope_freqs, (size_t)c->ne0 * sizeof(float));
        return;
    }
    uint64_t s = c->seed * 0xD1B54A32D192ED03ull ^ (c->tensor + 1) * 0x8CB92BA72F3D8DD7ull ^
                 ((uint64_t)row + 1) * 0xABC98388FB8FAC03ull;
    splitmix64(&s);
    /* Irwin-Hall(4): var 4/12, so scale by sqrt(3) for unit variance */
    const float k = 1.7320508f / 65536.0f;
    const float base = c->kind == W_NORM ? 1.0f : c->kind == W_POST_NORM ? GEMMA_POST_NORM : 0.0f;
    const float sd = c->std * k;
    int64_t i = 0;
    for (; i < c->ne0; i++) {
        uint64_t r = splitmix64(&s);
        int32_t sum = (int32_t)(r & 0xFFFF) + (int32_t)((r >> 16) & 0xFFFF) +
                      (int32_t)((r >> 32) & 0xFFFF) + (int32_t)(r >> 48) - 2 * 65535;
        dst[i] = base + sd * (float)sum;
    }
}

/* The "llama3" rope scaling of Llama 3.1/3.2, baked into per-frequency divisors exactly
 * as convert_hf_to_gguf.py computes them. */
static void llama3_rope_freqs(const nk_synth_params *p, float *out) {
    uint32_t half = p->head_dim / 2;
    double low_wl = p->rope_orig_ctx / p->rope_low_freq;
    double high_wl = p->rope_orig_ctx / p->rope_high_freq;
    for (uint32_t i = 0; i < half; i++) {
        float freq = 1.0f / powf(p->rope_base, (float)(2 * i) / (float)p->head_dim);
        double wl = 2.0 * M_PI / freq;
        double f;
        if (wl < high_wl) f = 1.0;
        else if (wl > low_wl) f = p->rope_scale_factor;
        else {
            double smooth = (p->rope_orig_ctx / wl - p->rope_low_freq) / (p->rope_high_freq - p->rope_low_freq);
            f = 1.0 / ((1.0 - smooth) / p->rope_scale_factor + smooth);
        }
        out[i] = (float)f;
    }
}

/* ---- metadata --------------------------------------------------------------------------- */

#define SET(call) do { if ((call) != NOOK_OK) \
        return nk_fail(err, NOOK_ENOMEM, "setting metadata: %s", gguf_writer_error(w)); } while (0)

static nook_status set_arch_keys(const nk_synth_params *p, gguf_writer *w, nook_error *err) {
    const char *a = arch_name(p->arch);
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, a), k)
    SET(gguf_set_str(w, "general.architecture", a));
    SET(gguf_set_str(w, "general.type", "model"));
    SET(gguf_set_str(w, "general.name", p->preset ? p->preset : "synthetic"));
    SET(gguf_set_str(w, "general.description", "nook synthetic model: random weights, real shapes"));
    SET(gguf_set_u32(w, KEY("context_length"), p->n_ctx));
    SET(gguf_set_u32(w, KEY("embedding_length"), p->n_embd));
    SET(gguf_set_u32(w, KEY("block_count"), p->n_layer));
    SET(gguf_set_u32(w, KEY("feed_forward_length"), p->n_ff));
    SET(gguf_set_u32(w, KEY("attention.head_count"), p->n_head));
    SET(gguf_set_u32(w, KEY("attention.head_count_kv"), p->n_head_kv));
    SET(gguf_set_f32(w, KEY("rope.freq_base"), p->rope_base));
    SET(gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), p->rms_eps));
    SET(gguf_set_u32(w, KEY("attention.key_length"), p->head_dim));
    SET(gguf_set_u32(w, KEY("attention.value_length"), p->head_dim));
    if (p->arch == NK_SYNTH_LLAMA) {
        SET(gguf_set_u32(w, KEY("vocab_size"), p->n_vocab));
        SET(gguf_set_u32(w, KEY("rope.dimension_count"), p->head_dim));
    }
    if (p->arch == NK_SYNTH_GEMMA3) SET(gguf_set_u32(w, KEY("attention.sliding_window"), p->n_swa));
#undef KEY
    return NOOK_OK;
}

/* Last, after the tokenizer: llama-quantize re-sets these two and ggml moves a re-set key
 * to the end, so this is where a quantized file has them. */
static nook_status set_file_type(const nk_synth_params *p, gguf_writer *w, nook_error *err) {
    SET(gguf_set_u32(w, "general.quantization_version", 2));
    SET(gguf_set_u32(w, "general.file_type", (uint32_t)p->ftype));
    return NOOK_OK;
}

/* Make the token list exactly n_vocab long, as the converter does: missing ids become
 * "[PAD<id>]" UNUSED tokens (score -1000 where there are scores), ids past the model's
 * vocab are dropped. Special-token ids must stay inside. */
static nook_status fit_vocab(gguf_writer *w, uint32_t n_vocab, nook_error *err) {
    uint8_t *mem = NULL;
    uint64_t len = 0;
    gguf_file *f = NULL;
    gguf_str *strs = NULL;
    const char **ptrs = NULL;
    uint64_t *lens = NULL;
    char *pads = NULL;
    int32_t *types = NULL;
    float *scores = NULL;
    nook_status st = gguf_write_mem(w, &mem, &len, err);
    if (!st) st = gguf_parse(mem, len, &f, err);
    if (st) goto done;
    const gguf_kv *tk = gguf_find(f, "tokenizer.ggml.tokens");
    if (!tk || tk->val.type != GGUF_TYPE_ARRAY || tk->val.v.arr.type != GGUF_TYPE_STRING) {
        st = nk_fail(err, NOOK_EFORMAT, "tokenizer import left no tokenizer.ggml.tokens array");
        goto done;
    }
    uint64_t n_tok = tk->val.v.arr.count;
    static const char *const ids[] = { "bos", "eos", "unknown", "padding", "seperator", "eot", "eom",
                                       "mask", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep" };
    for (size_t i = 0; i < NK_ARRAY_LEN(ids); i++) {
        char key[64];
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", ids[i]);
        uint32_t id;
        if (gguf_get_u32(f, key, &id, NULL) == NOOK_OK && id >= n_vocab && id != UINT32_MAX) {
            st = nk_fail(err, NOOK_EINVAL, "%s = %u does not fit a vocab of %u rows", key, id, n_vocab);
            goto done;
        }
    }
    if (n_tok == n_vocab) goto done;
    st = gguf_arr_strings(&tk->val, &strs, err);
    if (st) goto done;
    ptrs = nk_alloc_array(n_vocab, sizeof *ptrs);
    lens = nk_alloc_array(n_vocab, sizeof *lens);
    pads = nk_alloc_array(n_vocab > n_tok ? n_vocab - n_tok : 1, 24);
    types = nk_alloc_array(n_vocab, sizeof *types);
    scores = nk_alloc_array(n_vocab, sizeof *scores);
    if (!ptrs || !lens || !pads || !types || !scores) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    const gguf_kv *tt = gguf_find(f, "tokenizer.ggml.token_type");
    const gguf_kv *sc = gguf_find(f, "tokenizer.ggml.scores");
    if (tt && (tt->val.type != GGUF_TYPE_ARRAY || tt->val.v.arr.count != n_tok)) tt = NULL;
    if (sc && (sc->val.type != GGUF_TYPE_ARRAY || sc->val.v.arr.count != n_tok)) sc = NULL;
    for (uint64_t i = 0; i < n_vocab; i++) {
        if (i < n_tok) {
            ptrs[i] = strs[i].ptr;
            lens[i] = strs[i].len;
            types[i] = tt ? (int32_t)gguf_arr_i64(&tt->val, i) : NK_TOKEN_NORMAL;
            scores[i] = sc ? (float)gguf_arr_f64(&sc->val, i) : 0.0f;
        } else {
            char *pad = pads + (i - n_tok) * 24;
            lens[i] = (uint64_t)snprintf(pad, 24, "[PAD%llu]", (unsigned long long)i);
            ptrs[i] = pad;
            types[i] = NK_TOKEN_UNUSED;
            scores[i] = -1000.0f;
        }
    }
    if (gguf_set_arr_str(w, "tokenizer.ggml.tokens", ptrs, lens, n_vocab) ||
        (tt && gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n_vocab)) ||
        (sc && gguf_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, n_vocab)))
        st = nk_fail(err, NOOK_ENOMEM, "resizing the vocab: %s", gguf_writer_error(w));
done:
    nk_free(scores);
    nk_free(types);
    nk_free(pads);
    nk_free(lens);
    nk_free(ptrs);
    nk_free(strs);
    gguf_free(f);
    nk_free(mem);
    return st;
}

static nook_status check_params(const nk_synth_params *p, nook_error *err) {
    if (!arch_name(p->arch)) return nk_fail(err, NOOK_EINVAL, "synthetic model: unknown arch %d", (int)p->arch);
    if (!p->n_embd || !p->n_layer || !p->n_head || !p->n_head_kv || !p->head_dim || !p->n_ff ||
        !p->n_vocab || !p->n_ctx)
        return nk_fail(err, NOOK_EINVAL, "synthetic model: a dimension is zero");
    if (p->n_head % p->n_head_kv)
        return nk_fail(err, NOOK_EINVAL, "synthetic model: n_head %u not a multiple of n_head_kv %u",
                       p->n_head, p->n_head_kv);
    if (p->head_dim % 2)
        return nk_fail(err, NOOK_EINVAL, "synthetic model: head_dim %u is odd", p->head_dim);
    if (p->n_layer > 4096 || p->n_embd > (1u << 20) || p->n_ff > (1u << 22) || p->head_dim > 4096 ||
        p->n_head > 4096)
        return nk_fail(err, NOOK_EINVAL, "synthetic model: dimensions out of range");
    if (p->arch == NK_SYNTH_GEMMA3 && !p->n_swa)
        return nk_fail(err, NOOK_EINVAL, "synthetic gemma3: sliding window is zero");
    if (p->rope_scale_factor > 0 && (p->rope_low_freq <= 0 || p->rope_high_freq <= p->rope_low_freq ||
                                     !p->rope_orig_ctx))
        return nk_fail(err, NOOK_EINVAL, "synthetic model: bad llama3 rope scaling parameters");
    if (!nk_ftype_name(p->ftype))
        return nk_fail(err, NOOK_EINVAL, "synthetic model: unsupported file type %d", p->ftype);
    return NOOK_OK;
}

nook_status nk_synth_write(const nk_synth_params *p, const char *out_path, nook_error *err) {
    nook_status st = check_params(p, err);
    if (st) return st;
    gguf_writer *w = gguf_writer_new();
    plan pl = { 0 };
    nk_stream_tensor *infos = NULL;
    const char **names = NULL;
    float *rope = NULL;
    nk_stream *s = NULL;
    if (!w) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    pl.cap = 4 + (size_t)p->n_layer * 16;
    pl.t = nk_alloc_array(pl.cap, sizeof *pl.t);
    if (!pl.t) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    if (!build_plan(p, &pl)) { st = nk_fail(err, NOOK_EINTERNAL, "tensor plan overflow"); goto done; }
    qsort(pl.t, pl.n, sizeof *pl.t, plan_cmp);

    st = set_arch_keys(p, w, err);
    if (!st && p->tokenizer_dir) {
        st = nk_hf_import_tokenizer_arch(p->tokenizer_dir, arch_name(p->arch), w, err);
        if (!st) st = fit_vocab(w, p->n_vocab, err);
        if (st) nk_prefix(err, "%s: ", p->tokenizer_dir);
    }
    if (!st) st = set_file_type(p, w, err);
    if (st) goto done;

    /* types: F32 first, then the same mix llama-quantize would apply */
    names = nk_alloc_array(pl.n, sizeof *names);
    infos = nk_alloc_array(pl.n, sizeof *infos);
    if (!names || !infos) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < pl.n; i++) names[i] = pl.t[i].name;
    nk_mix mix;
    nk_mix_init(&mix, p->ftype, names, pl.n);
    for (size_t i = 0; i < pl.n; i++) {
        plan_tensor *t = &pl.t[i];
        t->type = p->ftype == NK_FTYPE_ALL_F32 ? NK_TYPE_F32
                                               : nk_mix_choose(&mix, t->name, t->n_dims, t->ne, NK_TYPE_F32);
        infos[i] = (nk_stream_tensor){ t->name, t->type, t->n_dims, { t->ne[0], t->ne[1], 1, 1 } };
    }
    if (p->rope_scale_factor > 0) {
        rope = nk_alloc_array(p->head_dim / 2, sizeof *rope);
        if (!rope) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
        llama3_rope_freqs(p, rope);
    }

    st = nk_stream_open(out_path, w, infos, pl.n, &s, err);
    if (st) goto done;
    const float emb_std = 3.0f / sqrtf((float)p->n_embd);
    for (size_t i = 0; i < pl.n && !st; i++) {
        const plan_tensor *t = &pl.t[i];
        fill_ctx c = { p->seed, name_hash(t->name), t->kind, (int64_t)t->ne[0], 0.0f, rope };
        switch (t->kind) {
        case W_EMBED: c.std = emb_std; break;
        case W_LINEAR: c.std = 1.0f / sqrtf((float)t->ne[0]); break;
        case W_NORM: case W_POST_NORM: c.std = 0.05f; break;
        default: break;
        }
        st = nk_stream_rows(s, t->type, (int64_t)t->ne[0], (int64_t)t->ne[1], fill_row, &c,
                            p->n_threads, err);
        if (st) nk_prefix(err, "tensor '%s': ", t->name);
    }
    if (!st) {
        st = nk_stream_finish(s, err);
        s = NULL;
    }
done:
    nk_stream_abort(s);
    nk_free(rope);
    nk_free(infos);
    nk_free(names);
    nk_free(pl.t);
    gguf_writer_free(w);
    return st;
}
