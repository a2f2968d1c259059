/*
 * cli_show.c: `nook show MODEL`: what a GGUF file holds, read straight from its
 * metadata and tensor index (src/gguf), without building the model, so it also
 * describes files nook cannot run. --verbose lists every key and every tensor.
 */
#include "cli/cli.h"
#include "cli/cli_store.h"
#include "gguf/gguf.h"
#include "tensor/types.h"

#include <stdlib.h>
#include <string.h>

/* llama.cpp's llama_ftype values (general.file_type), named as Ollama names them. */
static const char *ftype_name(int64_t ft) {
    static const char *const names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [4] = "Q4_1_SOME_F16",
        [7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1", [10] = "Q2_K", [11] = "Q3_K_S",
        [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S",
        [17] = "Q5_K_M", [18] = "Q6_K", [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S",
        [22] = "IQ3_XS", [23] = "IQ3_XXS", [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S",
        [27] = "IQ3_M", [28] = "IQ2_S", [29] = "IQ2_M", [30] = "IQ4_XS", [31] = "IQ1_M",
        [32] = "BF16", [36] = "TQ1_0", [37] = "TQ2_0", [38] = "MXFP4_MOE",
    };
    if (ft >= 0 && ft < (int64_t)NK_ARRAY_LEN(names) && names[ft]) return names[ft];
    return NULL;
}

static const char *type_name(uint32_t t) {
    const char *n = nk_type_name(t);
    return n ? n : "?";
}

static void human_count(char *buf, size_t cap, uint64_t n) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.2fB", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.2fM", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, cap, "%.2fK", (double)n / 1e3);
    else snprintf(buf, cap, "%llu", (unsigned long long)n);
}

static void human_bytes(char *buf, size_t cap, uint64_t n) {
    if (n >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", (double)n / (double)(1ull << 30));
    else if (n >= (1ull << 20)) snprintf(buf, cap, "%.2f MiB", (double)n / (double)(1ull << 20));
    else if (n >= (1ull << 10)) snprintf(buf, cap, "%.2f KiB", (double)n / 1024.0);
    else snprintf(buf, cap, "%llu B", (unsigned long long)n);
}

/* Prints s (len bytes, any content) quoted, with control characters escaped, cut at
 * max bytes (on a UTF-8 boundary) with a note of the full length. */
static void print_str(const char *s, uint64_t len, uint64_t max) {
    uint64_t n = len;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    putchar('"');
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '"') fputs("\\\"", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n < len) printf("... (%llu bytes)", (unsigned long long)len);
}

static bool is_int_type(gguf_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 ||
           t == GGUF_TYPE_INT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

static bool is_signed_type(gguf_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

static void print_scalar(const gguf_value *v) {
    switch (v->type) {
    case GGUF_TYPE_BOOL: fputs(v->v.u64 ? "true" : "false", stdout); break;
    case GGUF_TYPE_FLOAT32:
    case GGUF_TYPE_FLOAT64: printf("%g", v->v.f64); break;
    case GGUF_TYPE_STRING: print_str(v->v.str.ptr, v->v.str.len, 200); break;
    default:
        if (is_signed_type(v->type)) printf("%lld", (long long)v->v.i64);
        else printf("%llu", (unsigned long long)v->v.u64);
    }
}

/* "[string x 512] "<unk>", "<s>", ..." : the element type, count and first few. */
static void print_array(const gguf_value *v) {
    enum { SHOW = 6 };
    uint64_t n = v->v.arr.count;
    printf("[%s x %llu]", gguf_type_name(v->v.arr.type), (unsigned long long)n);
    uint64_t k = NK_MIN(n, (uint64_t)SHOW);
    if (k == 0) return;
    putchar(' ');
    if (v->v.arr.type == GGUF_TYPE_STRING) {
        gguf_str *strs = NULL;
        if (gguf_arr_strings(v, &strs, NULL) != NOOK_OK) { fputs("(unreadable)", stdout); return; }
        for (uint64_t i = 0; i < k; i++) {
            if (i) fputs(", ", stdout);
            print_str(strs[i].ptr, strs[i].len, 40);
        }
        nk_free(strs);
    } else {
        for (uint64_t i = 0; i < k; i++) {
            if (i) fputs(", ", stdout);
            if (v->v.arr.type == GGUF_TYPE_FLOAT32 || v->v.arr.type == GGUF_TYPE_FLOAT64)
                printf("%g", gguf_arr_f64(v, i));
            else if (v->v.arr.type == GGUF_TYPE_BOOL)
                fputs(gguf_arr_i64(v, i) ? "true" : "false", stdout);
            else if (is_int_type(v->v.arr.type) && !is_signed_type(v->v.arr.type))
                printf("%llu", (unsigned long long)(uint64_t)gguf_arr_i64(v, i));
            else
                printf("%lld", (long long)gguf_arr_i64(v, i));
        }
    }
    if (n > k) fputs(", ...", stdout);
}

/* <arch>.<suffix> as an integer, or -1 when absent or not an integer. */
static int64_t arch_int(const gguf_file *f, gguf_str arch, const char *suffix) {
    char key[256];
    snprintf(key, sizeof key, "%.*s.%s", (int)NK_MIN(arch.len, 128), arch.ptr, suffix);
    int64_t v;
    return gguf_get_i64(f, key, &v, NULL) == NOOK_OK ? v : -1;
}

static void row(const char *label) { printf("    %-22s", label); }

typedef struct type_mix { uint32_t type; uint64_t count, bytes; } type_mix;

static int cmp_mix(const void *a, const void *b) {
    const type_mix *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->type < y->type ? -1 : x->type > y->type;
}

static void show_template(const gguf_file *f) {
    gguf_str t;
    if (gguf_get_str(f, "tokenizer.chat_template", &t, NULL) != NOOK_OK) return;
    enum { LINES = 6 };
    printf("\n  Chat template\n");
    uint64_t pos = 0, lines = 0, total = 0;
    for (uint64_t i = 0; i < t.len; i++) if (t.ptr[i] == '\n') total++;
    if (t.len && t.ptr[t.len - 1] != '\n') total++;
    while (pos < t.len && lines < LINES) {
        uint64_t e = pos;
        while (e < t.len && t.ptr[e] != '\n') e++;
        uint64_t n = NK_MIN(e - pos, (uint64_t)160);
        printf("    %.*s%s\n", (int)n, t.ptr + pos, n < e - pos ? "..." : "");
        pos = e + 1;
        lines++;
    }
    if (total > lines) printf("    ... (%llu more lines)\n", (unsigned long long)(total - lines));
}

static bool o_verbose, o_modelfile, o_template, o_system, o_parameters, o_license;

static const cli_opt k_opts[] = {
    { "verbose", 'v', OPT_FLAG, &o_verbose, 0, 0, NULL,
      "also list every metadata key and the tensor table" },
    { "modelfile", 0, OPT_FLAG, &o_modelfile, 0, 0, NULL, "print the model's Modelfile (store names)" },
    { "template", 0, OPT_FLAG, &o_template, 0, 0, NULL, "print the TEMPLATE (else the GGUF's chat template)" },
    { "system", 0, OPT_FLAG, &o_system, 0, 0, NULL, "print the SYSTEM prompt" },
    { "parameters", 0, OPT_FLAG, &o_parameters, 0, 0, NULL, "print the PARAMETERs" },
    { "license", 0, OPT_FLAG, &o_license, 0, 0, NULL, "print the LICENSE" },
};

/* The store's views of a model (--modelfile, --template, ...). */
static int show_settings(const nk_model_ref *ref) {
    if (o_modelfile) {
        char *mf = nk_modelfile_render(ref);
        if (!mf) return cli_fail(CLI_EFAIL, "out of memory");
        fputs(mf, stdout);
        nk_free(mf);
    }
    if (o_template) {
        if (ref->template_go) printf("%s\n", ref->template_go);
        else {
            nook_model *m = cli_load_model_ex(ref->path, 0, false, true);
            if (!m) return CLI_EFAIL;
            const char *t = nook_model_chat_template(m);
            if (t) printf("%s\n", t);
            nook_model_free(m);
        }
    }
    if (o_system && ref->system) printf("%s\n", ref->system);
    if (o_license && ref->license) printf("%s\n", ref->license);
    if (o_parameters && ref->params) {
        const char *k;
        json_t *v;
        json_object_foreach(ref->params, k, v) {
            size_t n = json_is_array(v) ? json_array_size(v) : 1;
            for (size_t i = 0; i < n; i++) {
                json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
                char *t = json_dumps(x, JSON_ENCODE_ANY);
                if (t) printf("%-30s %s\n", k, t);
                free(t);
            }
        }
    }
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_EFAIL, "show: writing to stdout failed");
}
static const cli_verb_info k_info = {
    "show", "MODEL [--verbose]",
    "Show what a model holds: architecture, size, quantization, tokenizer, template. MODEL is a\n"
    "name in the store or a GGUF path; --modelfile, --template, --system, --parameters, --license\n"
    "print the model's settings as Ollama's show does.",
    k_opts, (int)NK_ARRAY_LEN(k_opts),
};

int cli_show(int argc, char **argv) {
    int npos;
    o_verbose = o_modelfile = o_template = o_system = o_parameters = o_license = false;
    int rc = cli_parse(&k_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 1) {
        return cli_fail(CLI_EUSAGE, "show: %s (usage: nook show MODEL [--verbose])",
                        npos ? "too many arguments" : "missing MODEL");
    }
    cli_install_log(o_verbose);
    if ((rc = cli_show_specialist(argv[0])) >= 0) return rc;
    nk_model_ref ref;
    if (cli_resolve_model(argv[0], false, &ref) != CLI_OK) return CLI_EFAIL;
    if (o_modelfile || o_template || o_system || o_parameters || o_license) {
        rc = show_settings(&ref);
        nk_model_ref_free(&ref);
        return rc;
    }
    nk_model_ref_free(&ref);
    const char *path = ref.path;

    nk_map map;
    nook_error err = { 0 };
    if (nk_map_file(path, false, &map, &err) != NOOK_OK)
        return cli_fail_open(path, err.msg);
    gguf_file *f = NULL;
    if (gguf_parse(map.data, map.size, &f, &err) != NOOK_OK) {
        nk_unmap(&map);
        return cli_fail(CLI_EFAIL, "%s: %s", path, err.msg);
    }

    gguf_str arch = { "", 0 }, name = { "", 0 };
    gguf_get_str(f, "general.architecture", &arch, NULL);
    gguf_get_str(f, "general.name", &name, NULL);

    /* weights: parameters and the per-type mix */
    type_mix mix[NK_TYPE_COUNT];
    int n_mix = 0;
    uint64_t n_params = 0, n_bytes = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) ne *= t->ne[d];  /* gguf checked: no overflow */
        n_params += ne;
        n_bytes += t->nbytes;
        int j = 0;
        while (j < n_mix && mix[j].type != t->type) j++;
        if (j == n_mix) {
            if (n_mix == NK_TYPE_COUNT) continue;   /* cannot happen: ids < NK_TYPE_COUNT */
            mix[n_mix++] = (type_mix){ t->type, 0, 0 };
        }
        mix[j].count++;
        mix[j].bytes += t->nbytes;
    }
    qsort(mix, (size_t)n_mix, sizeof mix[0], cmp_mix);

    char buf[64];
    printf("  Model\n");
    row("architecture"); printf("%.*s\n", (int)NK_MIN(arch.len, 200), arch.len ? arch.ptr : "(none)");
    if (name.len) { row("name"); printf("%.*s\n", (int)NK_MIN(name.len, 200), name.ptr); }
    human_count(buf, sizeof buf, n_params);
    row("parameters"); printf("%s (%llu)\n", buf, (unsigned long long)n_params);
    int64_t v;
    if ((v = arch_int(f, arch, "context_length")) >= 0) { row("context length"); printf("%lld\n", (long long)v); }
    if ((v = arch_int(f, arch, "embedding_length")) >= 0) { row("embedding length"); printf("%lld\n", (long long)v); }
    if ((v = arch_int(f, arch, "block_count")) >= 0) { row("layers"); printf("%lld\n", (long long)v); }
    if ((v = arch_int(f, arch, "attention.head_count")) >= 0) {
        int64_t kv = arch_int(f, arch, "attention.head_count_kv");
        row("heads");
        if (kv >= 0 && kv != v) printf("%lld (%lld key/value)\n", (long long)v, (long long)kv);
        else printf("%lld\n", (long long)v);
    }
    if ((v = arch_int(f, arch, "feed_forward_length")) >= 0) { row("feed forward length"); printf("%lld\n", (long long)v); }
    int64_t ft;
    row("quantization");
    if (gguf_get_i64(f, "general.file_type", &ft, NULL) == NOOK_OK) {
        const char *fn = ftype_name(ft);
        if (fn) printf("%s\n", fn);
        else printf("unknown (general.file_type %lld)\n", (long long)ft);
    } else if (n_mix > 0) {
        printf("%s (most weight bytes; no general.file_type)\n", type_name(mix[0].type));
    } else {
        printf("(no tensors)\n");
    }

    printf("\n  Weights\n");
    for (int i = 0; i < n_mix; i++) {
        human_bytes(buf, sizeof buf, mix[i].bytes);
        row(type_name(mix[i].type));
        printf("%llu tensor%s, %s\n", (unsigned long long)mix[i].count, mix[i].count == 1 ? "" : "s", buf);
    }
    human_bytes(buf, sizeof buf, n_bytes);
    row("total"); printf("%llu tensors, %s\n", (unsigned long long)f->n_tensors, buf);

    printf("\n  Tokenizer\n");
    gguf_str tm, pre;
    row("model");
    if (gguf_get_str(f, "tokenizer.ggml.model", &tm, NULL) == NOOK_OK) printf("%.*s\n", (int)NK_MIN(tm.len, 100), tm.ptr);
    else printf("(none)\n");
    row("pre-tokenizer");
    if (gguf_get_str(f, "tokenizer.ggml.pre", &pre, NULL) == NOOK_OK) printf("%.*s\n", (int)NK_MIN(pre.len, 100), pre.ptr);
    else printf("default\n");
    gguf_type et;
    uint64_t n_tok;
    const uint8_t *data;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n_tok, &data, NULL) == NOOK_OK) {
        row("vocab size"); printf("%llu\n", (unsigned long long)n_tok);
    }
    show_template(f);

    if (o_verbose) {
        printf("\n  Metadata (%llu keys, GGUF v%u)\n", (unsigned long long)f->n_kv, f->version);
        for (uint64_t i = 0; i < f->n_kv; i++) {
            const gguf_kv *kv = &f->kv[i];
            printf("    %-40.*s ", (int)NK_MIN(kv->key.len, 200), kv->key.ptr);
            if (kv->val.type == GGUF_TYPE_ARRAY) print_array(&kv->val);
            else { printf("%s ", gguf_type_name(kv->val.type)); print_scalar(&kv->val); }
            putchar('\n');
        }
        printf("\n  Tensors (%llu; data at offset %llu)\n", (unsigned long long)f->n_tensors,
               (unsigned long long)f->data_offset);
        printf("    %-40s %-6s %-24s %s\n", "name", "type", "shape", "offset");
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor *t = &f->tensors[i];
            char shape[96];
            int n = snprintf(shape, sizeof shape, "[");
            for (uint32_t d = 0; d < t->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
                n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%llu", d ? ", " : "",
                              (unsigned long long)t->ne[d]);
            if (n > 0 && (size_t)n < sizeof shape) snprintf(shape + n, sizeof shape - (size_t)n, "]");
            printf("    %-40.*s %-6s %-24s %llu\n", (int)NK_MIN(t->name.len, 200), t->name.ptr,
                   type_name(t->type), shape, (unsigned long long)t->offset);
        }
    }
    gguf_free(f);
    nk_unmap(&map);
    if (fflush(stdout) != 0) return cli_fail(CLI_EFAIL, "show: writing to stdout failed");
    return CLI_OK;
}
