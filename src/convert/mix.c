/*
 * mix.c: which type each tensor gets when a model is quantized to an ftype, following
 * llama.cpp's llama-quant.cpp (tensor_allows_quantization, llama_tensor_get_type and the
 * shape fallback) for the ftypes nook writes. The rules only look at tensor names,
 * shapes and two counters, so they are plain data-free logic here.
 */
#include "convert/convert.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct { const char *name; int ftype; int type; } FTYPES[] = {
    { "F32",    NK_FTYPE_ALL_F32, NK_TYPE_F32  },
    { "F16",    NK_FTYPE_F16,     NK_TYPE_F16  },
    { "BF16",   NK_FTYPE_BF16,    NK_TYPE_BF16 },
    { "Q4_0",   NK_FTYPE_Q4_0,    NK_TYPE_Q4_0 },
    { "Q4_1",   NK_FTYPE_Q4_1,    NK_TYPE_Q4_1 },
    { "Q5_0",   NK_FTYPE_Q5_0,    NK_TYPE_Q5_0 },
    { "Q5_1",   NK_FTYPE_Q5_1,    NK_TYPE_Q5_1 },
    { "Q8_0",   NK_FTYPE_Q8_0,    NK_TYPE_Q8_0 },
    { "Q4_K_S", NK_FTYPE_Q4_K_S,  NK_TYPE_Q4_K },
    { "Q4_K_M", NK_FTYPE_Q4_K_M,  NK_TYPE_Q4_K },
    { "Q5_K_S", NK_FTYPE_Q5_K_S,  NK_TYPE_Q5_K },
    { "Q5_K_M", NK_FTYPE_Q5_K_M,  NK_TYPE_Q5_K },
    { "Q6_K",   NK_FTYPE_Q6_K,    NK_TYPE_Q6_K },
};

int nk_ftype_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < NK_ARRAY_LEN(FTYPES); i++)
        if (strcasecmp(name, FTYPES[i].name) == 0) return FTYPES[i].ftype;
    if (strcasecmp(name, "ALL_F32") == 0) return NK_FTYPE_ALL_F32;
    return -1;
}

const char *nk_ftype_name(int ftype) {
    for (size_t i = 0; i < NK_ARRAY_LEN(FTYPES); i++)
        if (FTYPES[i].ftype == ftype) return FTYPES[i].name;
    return NULL;
}

int nk_ftype_default_type(int ftype) {
    for (size_t i = 0; i < NK_ARRAY_LEN(FTYPES); i++)
        if (FTYPES[i].ftype == ftype) return FTYPES[i].type;
    return -1;
}

bool nk_use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* sscanf(name, "blk.%d.", &layer) with layer -1 when it does not match. */
static long layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return end == name + 4 ? -1 : v;
}

int nk_tensor_order_cmp(const char *a, const char *b) {
    long la = layer_of(a), lb = layer_of(b);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

void nk_mix_init(nk_mix *mix, int ftype, const char *const *names, size_t n) {
    memset(mix, 0, sizeof *mix);
    mix->ftype = ftype;
    for (size_t i = 0; i < n; i++) {
        /* llama.cpp counts by substring, so fused or expert variants count too */
        if (strstr(names[i], "attn_v.weight") || strstr(names[i], "attn_qkv.weight") ||
            strstr(names[i], "attn_kv_b.weight"))
            mix->n_attn_v++;
        if (strstr(names[i], "ffn_down")) mix->n_ffn_down++;
        if (strcmp(names[i], "output.weight") == 0) mix->has_output = true;
    }
}

/* tensor_allows_quantization, for the tensors the supported architectures have. */
static bool allows_quantization(const char *name, uint32_t n_dims) {
    if (!has_suffix(name, "weight")) return false;
    if (n_dims < 2) return false;
    if (strstr(name, "_norm.weight")) return false;
    if (strstr(name, "ffn_gate_inp.weight")) return false;        /* MoE router */
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0)
        return false;
    if (strstr(name, "ssm_conv1d.weight") || strstr(name, "attn_rel_b.weight")) return false;
    return true;
}

/* llama_tensor_get_type for the ftypes nook writes (no imatrix, not MoE, not Falcon). */
static int mixed_type(nk_mix *mix, const char *name, const uint64_t *ne, int t) {
    const int f = mix->ftype;
    const bool km = f == NK_FTYPE_Q4_K_M || f == NK_FTYPE_Q5_K_M;
    if (strcmp(name, "output.weight") == 0 ||
        (!mix->has_output && strcmp(name, "token_embd.weight") == 0)) {
        if (ne[0] % QK_K != 0) t = NK_TYPE_Q8_0;
        else if (t != NK_TYPE_Q8_0) t = NK_TYPE_Q6_K;
    } else if (strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight") ||
               strstr(name, "attn_kv_b.weight")) {
        if (km && nk_use_more_bits(mix->i_attn_v, mix->n_attn_v)) t = NK_TYPE_Q6_K;
        else if (f == NK_FTYPE_Q4_K_S && mix->i_attn_v < 4) t = NK_TYPE_Q5_K;
        mix->i_attn_v++;
    } else if (strstr(name, "ffn_down")) {
        int i = mix->i_ffn_down, n = mix->n_ffn_down;
        if (km && nk_use_more_bits(i, n)) t = NK_TYPE_Q6_K;
        else if (f == NK_FTYPE_Q4_K_S && i < n / 8) t = NK_TYPE_Q5_K;
        mix->i_ffn_down++;
    }
    return t;
}

uint32_t nk_mix_choose(nk_mix *mix, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t cur_type) {
    int def = nk_ftype_default_type(mix->ftype);
    if (def < 0 || !allows_quantization(name, n_dims)) return cur_type;
    int t = def;
    const nk_type_traits *tr = nk_type_get((uint32_t)def);
    if (tr && tr->is_quantized) t = mixed_type(mix, name, ne, t);
    const nk_type_traits *tt = nk_type_get((uint32_t)t);
    if (!tt || ne[0] % (uint64_t)tt->blck != 0) {
        /* the shape fallback: a K-quant needs rows of 256 */
        switch (t) {
        case NK_TYPE_Q4_K: t = NK_TYPE_Q5_0; break;
        case NK_TYPE_Q5_K: t = NK_TYPE_Q5_1; break;
        case NK_TYPE_Q6_K: t = NK_TYPE_Q8_0; break;
        case NK_TYPE_Q2_K: case NK_TYPE_Q3_K: t = NK_TYPE_Q4_0; break;
        default: break;
        }
        tt = nk_type_get((uint32_t)t);
        if (!tt || ne[0] % (uint64_t)tt->blck != 0) t = NK_TYPE_F16;
    }
    return (uint32_t)t;
}
