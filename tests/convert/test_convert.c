/*
 * test_convert.c: the conversion layer without fixtures: llama.cpp's mix rules, the
 * streaming writer, synthetic models (weights-only, small vocab) parsed back, and
 * nk_quantize_file.
 */
#include "nk_test.h"
#include "convert/convert.h"

#include <stdint.h>
#include <sys/stat.h>

static char g_dir[512];

static const char *tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

/* A whole file in memory (small test files only). */
static uint8_t *slurp(const char *path, size_t *len) {
    char *p = NULL;
    if (nk_read_file(path, &p, len, NULL) != NOOK_OK) return NULL;
    return (uint8_t *)p;
}

typedef struct { nk_map map; gguf_file *f; } opened;

static bool open_gguf(const char *path, opened *o) {
    memset(o, 0, sizeof *o);
    nook_error err = { 0 };
    if (nk_map_file(path, false, &o->map, &err)) { fprintf(stderr, "%s\n", err.msg); return false; }
    if (gguf_parse(o->map.data, o->map.size, &o->f, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        nk_unmap(&o->map);
        return false;
    }
    return true;
}
static void close_gguf(opened *o) { gguf_free(o->f); nk_unmap(&o->map); }

static uint32_t get_u32(const gguf_file *f, const char *key) {
    uint32_t v = 0xDEADBEEF;
    gguf_get_u32(f, key, &v, NULL);
    return v;
}

/* ---- the mix rules, restated independently of mix.c ------------------------------ */

static void test_use_more_bits(void) {
    /* 28 layers (Qwen3-0.6B): first 3, last 4 (i >= 24), and i - 3 = 2 mod 3 */
    const int want[] = { 0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27 };
    int n = 0;
    for (int i = 0; i < 28; i++)
        if (nk_use_more_bits(i, 28)) {
            CHECK(n < (int)NK_ARRAY_LEN(want) && want[n] == i);
            n++;
        }
    CHECK_EQ_INT(n, NK_ARRAY_LEN(want));
    CHECK(nk_use_more_bits(0, 16) && nk_use_more_bits(1, 16) && !nk_use_more_bits(2, 16));
    CHECK(nk_use_more_bits(4, 16) && nk_use_more_bits(13, 16) && !nk_use_more_bits(12, 16));
}

static void test_ftype_names(void) {
    CHECK_EQ_INT(nk_ftype_from_name("Q4_K_M"), 15);
    CHECK_EQ_INT(nk_ftype_from_name("q8_0"), 7);
    CHECK_EQ_INT(nk_ftype_from_name("F32"), 0);
    CHECK_EQ_INT(nk_ftype_from_name("BF16"), 32);
    CHECK_EQ_INT(nk_ftype_from_name("Q5_K_M"), 17);
    CHECK_EQ_INT(nk_ftype_from_name("IQ2_XXS"), -1);
    CHECK_EQ_INT(nk_ftype_from_name(NULL), -1);
    CHECK_STR(nk_ftype_name(15), "Q4_K_M");
    CHECK(nk_ftype_name(4) == NULL);
    CHECK_EQ_INT(nk_ftype_default_type(NK_FTYPE_Q4_K_M), NK_TYPE_Q4_K);
    CHECK_EQ_INT(nk_ftype_default_type(NK_FTYPE_Q5_K_M), NK_TYPE_Q5_K);
}

/* Names of a small dense model, in the converter's per-layer order. */
static size_t model_names(char names[][64], int n_layer, bool tied) {
    size_t n = 0;
    snprintf(names[n++], 64, "token_embd.weight");
    for (int i = 0; i < n_layer; i++) {
        const char *per[] = { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm",
                              "attn_k_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down" };
        for (size_t j = 0; j < NK_ARRAY_LEN(per); j++) snprintf(names[n++], 64, "blk.%d.%s.weight", i, per[j]);
    }
    snprintf(names[n++], 64, "output_norm.weight");
    if (!tied) snprintf(names[n++], 64, "output.weight");
    return n;
}

static void test_mix_q4_k_m(void) {
    static char names[200][64];
    const char *ptrs[200];
    size_t n = model_names(names, 16, true);
    for (size_t i = 0; i < n; i++) ptrs[i] = names[i];
    nk_mix mix;
    nk_mix_init(&mix, NK_FTYPE_Q4_K_M, ptrs, n);
    CHECK_EQ_INT(mix.n_attn_v, 16);
    CHECK_EQ_INT(mix.n_ffn_down, 16);
    CHECK(!mix.has_output);
    int n_q6 = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = names[i];
        bool norm = strstr(nm, "norm") != NULL;
        uint64_t ne[4] = { strstr(nm, "ffn_down") ? 1024 : 512, norm ? 1 : 768, 1, 1 };
        uint32_t t = nk_mix_choose(&mix, nm, norm ? 1 : 2, ne, NK_TYPE_F32);
        int layer = -1;
        sscanf(nm, "blk.%d.", &layer);
        uint32_t want;
        if (norm) want = NK_TYPE_F32;
        else if (strcmp(nm, "token_embd.weight") == 0) want = NK_TYPE_Q6_K;   /* tied: it is the output */
        else if (strstr(nm, "attn_v") || strstr(nm, "ffn_down"))
            want = (layer < 2 || layer >= 14 || (layer - 2) % 3 == 2) ? NK_TYPE_Q6_K : NK_TYPE_Q4_K;
        else want = NK_TYPE_Q4_K;
        CHECK_MSG(t == want, "%s: got %u want %u", nm, t, want);
        n_q6 += t == NK_TYPE_Q6_K;
    }
    CHECK_EQ_INT(n_q6, 1 + 2 * 8);   /* layers 0,1,4,7,10,13,14,15 for v and down, + token_embd */

    /* untied: token_embd stays Q4_K, output becomes Q6_K */
    n = model_names(names, 2, false);
    for (size_t i = 0; i < n; i++) ptrs[i] = names[i];
    nk_mix_init(&mix, NK_FTYPE_Q4_K_M, ptrs, n);
    CHECK(mix.has_output);
    uint64_t ne[4] = { 4096, 151936, 1, 1 };
    CHECK_EQ_INT(nk_mix_choose(&mix, "token_embd.weight", 2, ne, NK_TYPE_BF16), NK_TYPE_Q4_K);
    CHECK_EQ_INT(nk_mix_choose(&mix, "output.weight", 2, ne, NK_TYPE_BF16), NK_TYPE_Q6_K);
}

static void test_mix_fallbacks(void) {
    const char *names[] = { "token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight",
                            "blk.0.ffn_down.weight", "blk.0.attn_norm.weight", "rope_freqs.weight" };
    nk_mix mix;
    nk_mix_init(&mix, NK_FTYPE_Q4_K_M, names, NK_ARRAY_LEN(names));
    /* Gemma 3 1B widths: 1152 is 4.5 blocks of 256 */
    uint64_t emb[4] = { 1152, 262144, 1, 1 }, q[4] = { 1152, 1024, 1, 1 }, down[4] = { 6912, 1152, 1, 1 };
    CHECK_EQ_INT(nk_mix_choose(&mix, names[0], 2, emb, NK_TYPE_F32), NK_TYPE_Q8_0);  /* output rule */
    CHECK_EQ_INT(nk_mix_choose(&mix, names[1], 2, q, NK_TYPE_F32), NK_TYPE_Q5_0);    /* Q4_K -> Q5_0 */
    CHECK_EQ_INT(nk_mix_choose(&mix, names[2], 2, q, NK_TYPE_F32), NK_TYPE_Q8_0);    /* Q6_K -> Q8_0 */
    CHECK_EQ_INT(nk_mix_choose(&mix, names[3], 2, down, NK_TYPE_F32), NK_TYPE_Q6_K); /* fits: stays */
    uint64_t v1[4] = { 1152, 1, 1, 1 }, r[4] = { 32, 1, 1, 1 };
    CHECK_EQ_INT(nk_mix_choose(&mix, names[4], 1, v1, NK_TYPE_F32), NK_TYPE_F32);
    CHECK_EQ_INT(nk_mix_choose(&mix, names[5], 1, r, NK_TYPE_F32), NK_TYPE_F32);
    /* a width no 32-block fits: F16 */
    uint64_t odd[4] = { 100, 64, 1, 1 };
    CHECK_EQ_INT(nk_mix_choose(&mix, "blk.0.ffn_up.weight", 2, odd, NK_TYPE_F32), NK_TYPE_F16);

    /* Q5_K_M: Q5_K -> Q5_1 fallback */
    nk_mix_init(&mix, NK_FTYPE_Q5_K_M, names, NK_ARRAY_LEN(names));
    CHECK_EQ_INT(nk_mix_choose(&mix, names[1], 2, q, NK_TYPE_F32), NK_TYPE_Q5_1);
}

static void test_mix_legacy(void) {
    const char *names[] = { "token_embd.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight",
                            "blk.0.ffn_norm.weight" };
    uint64_t ne[4] = { 256, 512, 1, 1 }, n1[4] = { 256, 1, 1, 1 };
    nk_mix mix;
    nk_mix_init(&mix, NK_FTYPE_Q8_0, names, 4);
    CHECK_EQ_INT(nk_mix_choose(&mix, names[0], 2, ne, NK_TYPE_F32), NK_TYPE_Q8_0);   /* Q8_0 output stays */
    CHECK_EQ_INT(nk_mix_choose(&mix, names[1], 2, ne, NK_TYPE_F32), NK_TYPE_Q8_0);
    nk_mix_init(&mix, NK_FTYPE_Q4_0, names, 4);
    CHECK_EQ_INT(nk_mix_choose(&mix, names[0], 2, ne, NK_TYPE_F32), NK_TYPE_Q6_K);   /* output: Q6_K */
    CHECK_EQ_INT(nk_mix_choose(&mix, names[1], 2, ne, NK_TYPE_F32), NK_TYPE_Q4_0);
    CHECK_EQ_INT(nk_mix_choose(&mix, names[2], 2, ne, NK_TYPE_F32), NK_TYPE_Q4_0);
    nk_mix_init(&mix, NK_FTYPE_F16, names, 4);
    CHECK_EQ_INT(nk_mix_choose(&mix, names[0], 2, ne, NK_TYPE_F32), NK_TYPE_F16);    /* no mix for floats */
    CHECK_EQ_INT(nk_mix_choose(&mix, names[3], 1, n1, NK_TYPE_F32), NK_TYPE_F32);
    nk_mix_init(&mix, NK_FTYPE_Q6_K, names, 4);
    CHECK_EQ_INT(nk_mix_choose(&mix, names[2], 2, ne, NK_TYPE_F32), NK_TYPE_Q6_K);
}

/* ---- streaming writer -------------------------------------------------------------- */

static void test_stream(void) {
    char path[600];
    tmp_path(path, sizeof path, "stream.gguf");
    gguf_writer *w = gguf_writer_new();
    CHECK(w && gguf_set_str(w, "general.architecture", "llama") == NOOK_OK);
    CHECK(gguf_set_u32(w, "llama.block_count", 3) == NOOK_OK);
    nk_stream_tensor ts[3] = {
        { "a", NK_TYPE_F32, 1, { 3, 1, 1, 1 } },
        { "b", NK_TYPE_Q8_0, 2, { 64, 2, 1, 1 } },
        { "c", NK_TYPE_F16, 2, { 5, 3, 1, 1 } },
    };
    nk_stream *s = NULL;
    nook_error err = { 0 };
    CHECK(nk_stream_open(path, w, ts, 3, &s, &err) == NOOK_OK);
    float a[3] = { 1, 2, 3 };
    uint8_t b[2 * 2 * 34];
    for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)(i * 7);
    uint16_t c[15];
    for (int i = 0; i < 15; i++) c[i] = nk_fp32_to_fp16((float)i);
    CHECK(nk_stream_write(s, a, sizeof a, &err) == NOOK_OK);
    CHECK(nk_stream_write(s, b, 10, &err) == NOOK_OK);              /* in pieces, */
    CHECK(nk_stream_write(s, b + 10, sizeof b - 10, &err) == NOOK_OK);
    CHECK(nk_stream_write(s, c, sizeof c, &err) == NOOK_OK);
    CHECK(nk_stream_write(s, c, 1, &err) == NOOK_EINVAL);            /* one byte too many */
    CHECK(nk_stream_finish(s, &err) == NOOK_OK);

    /* the same file through gguf_writer must be identical */
    CHECK(gguf_add_tensor(w, "a", NK_TYPE_F32, 1, ts[0].ne, a, sizeof a) == NOOK_OK);
    CHECK(gguf_add_tensor(w, "b", NK_TYPE_Q8_0, 2, ts[1].ne, b, sizeof b) == NOOK_OK);
    CHECK(gguf_add_tensor(w, "c", NK_TYPE_F16, 2, ts[2].ne, c, sizeof c) == NOOK_OK);
    uint8_t *mem = NULL;
    uint64_t mem_len = 0;
    CHECK(gguf_write_mem(w, &mem, &mem_len, &err) == NOOK_OK);
    size_t len = 0;
    uint8_t *file = slurp(path, &len);
    CHECK(file && len == mem_len && memcmp(file, mem, len) == 0);
    nk_free(file);
    nk_free(mem);

    /* missing data: error, and no file left behind */
    char path2[600], tmp2[700];
    tmp_path(path2, sizeof path2, "short.gguf");
    snprintf(tmp2, sizeof tmp2, "%s.tmp", path2);
    gguf_writer *w2 = gguf_writer_new();
    CHECK(nk_stream_open(path2, w2, ts, 3, &s, &err) == NOOK_OK);
    CHECK(nk_stream_write(s, a, sizeof a, &err) == NOOK_OK);
    CHECK(nk_stream_finish(s, &err) == NOOK_EINVAL);
    CHECK(strstr(err.msg, "'b'") != NULL);
    CHECK(access(path2, F_OK) != 0 && access(tmp2, F_OK) != 0);

    /* bad declarations */
    nk_stream_tensor bad[2] = { { "x", NK_TYPE_Q4_K, 2, { 100, 2, 1, 1 } }, { "x", NK_TYPE_F32, 1, { 1, 1, 1, 1 } } };
    CHECK(nk_stream_open(path2, w2, bad, 1, &s, &err) == NOOK_EINVAL);
    bad[0].type = NK_TYPE_F32;
    CHECK(nk_stream_open(path2, w2, bad, 2, &s, &err) == NOOK_EINVAL);   /* duplicate */
    nk_stream_tensor longname = { "a_name_that_is_much_longer_than_sixty_three_bytes_so_ggml_would_refuse_it",
                                  NK_TYPE_F32, 1, { 1, 1, 1, 1 } };
    CHECK(nk_stream_open(path2, w2, &longname, 1, &s, &err) == NOOK_EINVAL);
    CHECK(access(path2, F_OK) != 0);
    gguf_writer_free(w2);
    gguf_writer_free(w);
}

/* ---- synthetic models ------------------------------------------------------------------ */

static nk_synth_params small_params(nk_synth_arch arch, int ftype) {
    nk_synth_params p;
    memset(&p, 0, sizeof p);
    p.preset = "test-small";
    p.arch = arch;
    p.n_embd = 256; p.n_layer = 8; p.n_head = 4; p.n_head_kv = 2; p.head_dim = 64;
    p.n_ff = 512; p.n_vocab = 1000; p.n_ctx = 2048; p.tied = true;
    p.rope_base = 10000.0f; p.rms_eps = 1e-6f;
    if (arch == NK_SYNTH_GEMMA3) { p.n_swa = 16; p.swa_pattern = 6; p.rope_base_swa = 10000.0f; }
    if (arch == NK_SYNTH_LLAMA) {
        p.tied = false;
        p.rope_base = 500000.0f;
        p.rope_scale_factor = 32.0f; p.rope_low_freq = 1.0f; p.rope_high_freq = 4.0f; p.rope_orig_ctx = 8192;
    }
    p.ftype = ftype;
    p.seed = 7;
    p.n_threads = 2;
    return p;
}

static double tensor_std(const gguf_tensor *t, double *mean, bool *finite) {
    const float *x = t->data;
    uint64_t n = t->nbytes / 4;
    double s = 0, s2 = 0;
    *finite = true;
    for (uint64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) *finite = false;
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    *mean = s / (double)n;
    return sqrt(s2 / (double)n - *mean * *mean);
}

static void test_synth_f32_values(void) {
    char path[600];
    tmp_path(path, sizeof path, "qwen3-small-f32.gguf");
    nk_synth_params p = small_params(NK_SYNTH_QWEN3, NK_FTYPE_ALL_F32);
    nook_error err = { 0 };
    CHECK_MSG(nk_synth_write(&p, path, &err) == NOOK_OK, "%s", err.msg);
    opened o;
    if (!open_gguf(path, &o)) { CHECK(0); return; }
    const gguf_file *f = o.f;
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, NULL) == NOOK_OK && gguf_str_eq(s, "qwen3"));
    CHECK_EQ_INT(get_u32(f, "qwen3.embedding_length"), 256);
    CHECK_EQ_INT(get_u32(f, "qwen3.block_count"), 8);
    CHECK_EQ_INT(get_u32(f, "qwen3.attention.head_count_kv"), 2);
    CHECK_EQ_INT(get_u32(f, "qwen3.attention.key_length"), 64);
    CHECK_EQ_INT(get_u32(f, "general.file_type"), 0);
    CHECK(gguf_find(f, "tokenizer.ggml.tokens") == NULL);          /* weights-only */
    /* 1 embd + 11 per layer + output_norm; tied: no output.weight */
    CHECK_EQ_INT(f->n_tensors, 1 + 8 * 11 + 1);
    CHECK(gguf_find_tensor(f, "output.weight") == NULL);
    const gguf_tensor *q = gguf_find_tensor(f, "blk.3.attn_q.weight");
    CHECK(q && q->ne[0] == 256 && q->ne[1] == 256 && q->type == NK_TYPE_F32);
    const gguf_tensor *k = gguf_find_tensor(f, "blk.3.attn_k.weight");
    CHECK(k && k->ne[0] == 256 && k->ne[1] == 128);
    const gguf_tensor *qn = gguf_find_tensor(f, "blk.3.attn_q_norm.weight");
    CHECK(qn && qn->n_dims == 1 && qn->ne[0] == 64);
    const gguf_tensor *dn = gguf_find_tensor(f, "blk.7.ffn_down.weight");
    CHECK(dn && dn->ne[0] == 512 && dn->ne[1] == 256);
    double mean, sd;
    bool fin;
    sd = tensor_std(dn, &mean, &fin);
    CHECK(fin);
    CHECK_NEAR(sd, 1.0 / sqrt(512.0), 0.002);
    CHECK_NEAR(mean, 0.0, 0.002);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    CHECK(emb && emb->ne[0] == 256 && emb->ne[1] == 1000);
    sd = tensor_std(emb, &mean, &fin);
    CHECK(fin);
    CHECK_NEAR(sd, 3.0 / 16.0, 0.002);
    const gguf_tensor *nrm = gguf_find_tensor(f, "blk.0.ffn_norm.weight");
    sd = tensor_std(nrm, &mean, &fin);
    CHECK_NEAR(mean, 1.0, 0.01);
    CHECK(sd > 0.02 && sd < 0.08);
    /* different tensors get different streams */
    const gguf_tensor *q2 = gguf_find_tensor(f, "blk.4.attn_q.weight");
    CHECK(memcmp(q->data, q2->data, 256) != 0);
    close_gguf(&o);
}

static void test_synth_llama_gemma(void) {
    char path[600];
    nook_error err = { 0 };
    opened o;
    /* llama: untied output, rope_freqs with the llama3 divisors */
    tmp_path(path, sizeof path, "llama-small-q8.gguf");
    nk_synth_params p = small_params(NK_SYNTH_LLAMA, NK_FTYPE_Q8_0);
    CHECK_MSG(nk_synth_write(&p, path, &err) == NOOK_OK, "%s", err.msg);
    if (open_gguf(path, &o)) {
        CHECK_EQ_INT(get_u32(o.f, "llama.rope.dimension_count"), 64);
        CHECK_EQ_INT(get_u32(o.f, "llama.vocab_size"), 1000);
        CHECK_EQ_INT(get_u32(o.f, "general.file_type"), 7);
        CHECK(gguf_find_tensor(o.f, "blk.0.attn_q_norm.weight") == NULL);
        const gguf_tensor *out = gguf_find_tensor(o.f, "output.weight");
        CHECK(out && out->type == NK_TYPE_Q8_0);
        const gguf_tensor *rf = gguf_find_tensor(o.f, "rope_freqs.weight");
        CHECK(rf && rf->type == NK_TYPE_F32 && rf->n_dims == 1 && rf->ne[0] == 32);
        if (rf) {
            const float *r = rf->data;
            CHECK(r[0] == 1.0f);       /* short wavelengths untouched */
            CHECK(r[31] == 32.0f);     /* long ones divided by the factor */
            bool mono = true;
            for (int i = 1; i < 32; i++) mono &= r[i] >= r[i - 1];
            CHECK(mono);
            /* i = 12: wavelength 2*pi*500000^(24/64) ~ 867 < 2048: 1; the smooth band is
             * wavelengths 2048..8192 */
            int n_mid = 0;
            for (int i = 0; i < 32; i++) n_mid += r[i] > 1.0f && r[i] < 32.0f;
            CHECK(n_mid >= 1);
        }
        close_gguf(&o);
    }
    /* gemma3 at an odd width: post norms, sliding window, fallbacks */
    tmp_path(path, sizeof path, "gemma-odd-q4km.gguf");
    p = small_params(NK_SYNTH_GEMMA3, NK_FTYPE_Q4_K_M);
    p.n_embd = 288; p.n_layer = 6; p.n_ff = 768;
    CHECK_MSG(nk_synth_write(&p, path, &err) == NOOK_OK, "%s", err.msg);
    if (open_gguf(path, &o)) {
        CHECK_EQ_INT(get_u32(o.f, "gemma3.attention.sliding_window"), 16);
        CHECK_EQ_INT(get_u32(o.f, "general.file_type"), 15);
        CHECK_EQ_INT(get_u32(o.f, "general.quantization_version"), 2);
        CHECK(gguf_find_tensor(o.f, "blk.5.post_attention_norm.weight") != NULL);
        CHECK(gguf_find_tensor(o.f, "blk.5.post_ffw_norm.weight") != NULL);
        const gguf_tensor *e = gguf_find_tensor(o.f, "token_embd.weight");
        CHECK(e && e->type == NK_TYPE_Q8_0);                 /* 288 % 256 != 0 */
        const gguf_tensor *q = gguf_find_tensor(o.f, "blk.2.attn_q.weight");
        CHECK(q && q->type == NK_TYPE_Q5_0);
        /* 6 layers: use_more_bits holds for layers 2 and 5 only */
        const gguf_tensor *v0 = gguf_find_tensor(o.f, "blk.0.attn_v.weight");
        CHECK(v0 && v0->type == NK_TYPE_Q5_0);               /* Q4_K layer, falls back */
        const gguf_tensor *v2 = gguf_find_tensor(o.f, "blk.2.attn_v.weight");
        CHECK(v2 && v2->type == NK_TYPE_Q8_0);               /* Q6_K layer, falls back */
        const gguf_tensor *o2 = gguf_find_tensor(o.f, "blk.2.attn_output.weight");
        CHECK(o2 && o2->type == NK_TYPE_Q4_K);               /* ne0 = 4*64 = 256 */
        const gguf_tensor *d0 = gguf_find_tensor(o.f, "blk.0.ffn_down.weight");
        CHECK(d0 && d0->type == NK_TYPE_Q4_K);               /* ne0 = 768 fits K-quants */
        const gguf_tensor *d5 = gguf_find_tensor(o.f, "blk.5.ffn_down.weight");
        CHECK(d5 && d5->type == NK_TYPE_Q6_K);
        const gguf_tensor *pn = gguf_find_tensor(o.f, "blk.1.post_ffw_norm.weight");
        CHECK(pn && pn->type == NK_TYPE_F32);
        close_gguf(&o);
    }
    /* bad parameters are refused, by name */
    p.n_head_kv = 3;
    CHECK(nk_synth_write(&p, path, &err) == NOOK_EINVAL && strstr(err.msg, "n_head_kv"));
    p = small_params(NK_SYNTH_QWEN3, 99);
    CHECK(nk_synth_write(&p, path, &err) == NOOK_EINVAL);
}

/* Same seed, same bytes, whatever the thread count; another seed, other bytes. */
static void test_synth_determinism(void) {
    char a[600], b[600], c[600];
    tmp_path(a, sizeof a, "det-a.gguf");
    tmp_path(b, sizeof b, "det-b.gguf");
    tmp_path(c, sizeof c, "det-c.gguf");
    nook_error err = { 0 };
    nk_synth_params p = small_params(NK_SYNTH_QWEN3, NK_FTYPE_Q4_K_M);
    p.n_layer = 3;
    CHECK(nk_synth_write(&p, a, &err) == NOOK_OK);
    p.n_threads = 3;
    CHECK(nk_synth_write(&p, b, &err) == NOOK_OK);
    p.seed = 8;
    CHECK(nk_synth_write(&p, c, &err) == NOOK_OK);
    size_t la = 0, lb = 0, lc = 0;
    uint8_t *da = slurp(a, &la), *db = slurp(b, &lb), *dc = slurp(c, &lc);
    CHECK(da && db && dc);
    CHECK(la == lb && la == lc);
    CHECK(da && db && la == lb && memcmp(da, db, la) == 0);
    CHECK(da && dc && la == lc && memcmp(da, dc, la) != 0);
    nk_free(da); nk_free(db); nk_free(dc);
}

/* ---- quantize ---------------------------------------------------------------------------- */

static void test_quantize(void) {
    char f32[600], direct[600], quant[600], f16[600], q8[600];
    tmp_path(f32, sizeof f32, "q-src-f32.gguf");
    tmp_path(direct, sizeof direct, "q-direct.gguf");
    tmp_path(quant, sizeof quant, "q-quant.gguf");
    tmp_path(f16, sizeof f16, "q-src-f16.gguf");
    tmp_path(q8, sizeof q8, "q-q8.gguf");
    nook_error err = { 0 };
    nk_synth_params p = small_params(NK_SYNTH_QWEN3, NK_FTYPE_ALL_F32);
    p.n_layer = 4;
    CHECK(nk_synth_write(&p, f32, &err) == NOOK_OK);
    p.ftype = NK_FTYPE_Q4_K_M;
    CHECK(nk_synth_write(&p, direct, &err) == NOOK_OK);
    /* quantizing the F32 file gives exactly the file written at Q4_K_M directly */
    CHECK_MSG(nk_quantize_file(f32, quant, "Q4_K_M", 2, &err) == NOOK_OK, "%s", err.msg);
    size_t l1 = 0, l2 = 0;
    uint8_t *d1 = slurp(direct, &l1), *d2 = slurp(quant, &l2);
    CHECK(d1 && d2 && l1 == l2 && memcmp(d1, d2, l1) == 0);
    nk_free(d1);
    nk_free(d2);

    /* F16 -> Q8_0: values survive within Q8_0's error */
    CHECK(nk_quantize_file(f32, f16, "F16", 1, &err) == NOOK_OK);
    CHECK_MSG(nk_quantize_file(f16, q8, "q8_0", 0, &err) == NOOK_OK, "%s", err.msg);
    opened a, b;
    if (open_gguf(f32, &a) && open_gguf(q8, &b)) {
        CHECK_EQ_INT(get_u32(b.f, "general.file_type"), 7);
        CHECK_EQ_INT(a.f->n_kv, b.f->n_kv);
        const gguf_tensor *ta = gguf_find_tensor(a.f, "blk.1.ffn_up.weight");
        const gguf_tensor *tb = gguf_find_tensor(b.f, "blk.1.ffn_up.weight");
        CHECK(ta && tb && tb->type == NK_TYPE_Q8_0);
        const gguf_tensor *nb = gguf_find_tensor(b.f, "blk.1.ffn_norm.weight");
        CHECK(nb && nb->type == NK_TYPE_F32);
        if (ta && tb) {
            int64_t n = (int64_t)(ta->ne[0] * ta->ne[1]);
            float *x = nk_alloc_array((size_t)n, sizeof(float));
            nk_type_get(NK_TYPE_Q8_0)->to_float(tb->data, x, n);
            const float *ref = ta->data;
            double maxerr = 0;
            for (int64_t i = 0; i < n; i++) maxerr = fmax(maxerr, fabs(x[i] - ref[i]));
            CHECK(maxerr < 0.02 * 1.0 / 16.0 * 3.5);   /* step = amax/127, amax <= 3.5 sigma */
            nk_free(x);
        }
        close_gguf(&a);
        close_gguf(&b);
    }

    /* errors */
    CHECK(nk_quantize_file(f32, quant, "IQ1_S", 1, &err) == NOOK_EINVAL && strstr(err.msg, "IQ1_S"));
    CHECK(nk_quantize_file(f32, f32, "Q8_0", 1, &err) == NOOK_EINVAL);
    char missing[600];
    tmp_path(missing, sizeof missing, "missing.gguf");
    CHECK(nk_quantize_file(missing, quant, "Q8_0", 1, &err) == NOOK_EIO);
    char junk[600];
    tmp_path(junk, sizeof junk, "junk.gguf");
    CHECK(nk_write_file_atomic(junk, "GGUF\3\0\0\0garbage", 15, &err) == NOOK_OK);
    CHECK(nk_quantize_file(junk, quant, "Q8_0", 1, &err) == NOOK_EFORMAT);
}

static void rm_dir(void) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/nook-convert-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    nk_tensor_init();
    test_use_more_bits();
    test_ftype_names();
    test_mix_q4_k_m();
    test_mix_fallbacks();
    test_mix_legacy();
    test_stream();
    test_synth_f32_values();
    test_synth_llama_gemma();
    test_synth_determinism();
    test_quantize();
    rm_dir();
    NK_TEST_DONE();
}
