/*
 * quantize.c: nk_quantize_file, nook's llama-quantize. The input is mapped read-only;
 * each tensor's new type comes from the mix rules (mix.c); tensors that keep their type
 * are copied byte for byte, the others are decoded a row at a time with the source
 * type's to_float and re-encoded with the target's reference quantizer on n threads,
 * straight into the output file (stream.c).
 */
#include "convert/convert.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const uint8_t *data;
    size_t row_bytes;
    int64_t ne0;
    nk_to_float_fn to_float;
} src_rows;

static void fill_from_src(void *vctx, int64_t row, float *dst) {
    const src_rows *c = vctx;
    c->to_float(c->data + (size_t)row * c->row_bytes, dst, c->ne0);
}

typedef struct { const char *name; uint64_t idx; } ordered;

static int by_loader_order(const void *a, const void *b) {
    return nk_tensor_order_cmp(((const ordered *)a)->name, ((const ordered *)b)->name);
}

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (strcmp(a, b) == 0) return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

nook_status nk_quantize_file(const char *in_path, const char *out_path, const char *ftype_name,
                             int n_threads, nook_error *err) {
    const nk_quantize_opts o = { .allow_requantize = true };
    return nk_quantize_file_ex(in_path, out_path, ftype_name, n_threads, &o, err);
}

static bool is_quantized(uint32_t type) {
    return type != NK_TYPE_F32 && type != NK_TYPE_F16 && type != NK_TYPE_BF16;
}

nook_status nk_quantize_file_ex(const char *in_path, const char *out_path, const char *ftype_name,
                                int n_threads, const nk_quantize_opts *opts, nook_error *err) {
    const nk_quantize_opts none = { .allow_requantize = true };
    if (!opts) opts = &none;
    int ftype = nk_ftype_from_name(ftype_name);
    if (ftype < 0)
        return nk_fail(err, NOOK_EINVAL, "unknown quantization type '%s' (try Q4_K_M, Q8_0, Q4_0)",
                       ftype_name ? ftype_name : "(null)");
    if (!in_path || !out_path || same_file(in_path, out_path))
        return nk_fail(err, NOOK_EINVAL, "input and output must be different files");

    nk_map map = { 0 };
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    const char **names = NULL;
    nk_stream_tensor *infos = NULL;
    ordered *order = NULL;
    nk_stream *s = NULL;
    nook_status st = nk_map_file(in_path, false, &map, err);
    if (st) return st;
    st = gguf_parse(map.data, map.size, &f, err);
    if (st) { nk_prefix(err, "%s: ", in_path); goto done; }

    w = gguf_writer_new();
    names = nk_calloc(f->n_tensors ? f->n_tensors : 1, sizeof *names);
    infos = nk_alloc_array(f->n_tensors ? f->n_tensors : 1, sizeof *infos);
    order = nk_alloc_array(f->n_tensors ? f->n_tensors : 1, sizeof *order);
    if (!w || !names || !infos || !order) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    /* Keys in llama-quantize's order: everything else as it was, then these two at the
     * end (ggml's gguf_set_* moves an existing key to the end). */
    for (uint64_t i = 0; i < f->n_kv; i++) {
        if (gguf_str_eq(f->kv[i].key, "general.quantization_version") ||
            gguf_str_eq(f->kv[i].key, "general.file_type"))
            continue;
        if (gguf_set_kv_from(w, &f->kv[i]) != NOOK_OK) {
            st = nk_fail(err, NOOK_EFORMAT, "%s: copying key %llu: %s", in_path,
                         (unsigned long long)i, gguf_writer_error(w));
            goto done;
        }
    }
    if (gguf_set_u32(w, "general.quantization_version", 2) ||
        gguf_set_u32(w, "general.file_type", (uint32_t)ftype)) {
        st = nk_fail(err, NOOK_ENOMEM, "setting metadata: %s", gguf_writer_error(w));
        goto done;
    }

    /* names need NUL-terminated copies for the mix rules */
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        names[i] = nk_strndup(f->tensors[i].name.ptr, (size_t)f->tensors[i].name.len);
        if (!names[i]) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    }
    /* tensors in llama.cpp's loader order, which is also the order its mix counts in */
    for (uint64_t i = 0; i < f->n_tensors; i++) order[i] = (ordered){ names[i], i };
    qsort(order, (size_t)f->n_tensors, sizeof *order, by_loader_order);
    nk_mix mix;
    nk_mix_init(&mix, ftype, names, (size_t)f->n_tensors);
    for (uint64_t k = 0; k < f->n_tensors; k++) {
        uint64_t i = order[k].idx;
        const gguf_tensor *t = &f->tensors[i];
        uint32_t type = nk_mix_choose(&mix, names[i], t->n_dims, t->ne, t->type);
        infos[k] = (nk_stream_tensor){ names[i], type, t->n_dims, { t->ne[0], t->ne[1], t->ne[2], t->ne[3] } };
        if (type == t->type) continue;
        if (!opts->allow_requantize && is_quantized(t->type)) {
            st = nk_fail(err, NOOK_EINVAL, "%s is already quantized (tensor '%s' is %s); re-quantizing loses quality "
                         "twice: quantize the F16/F32 original, or pass --allow-requantize",
                         in_path, names[i], nk_type_name(t->type) ? nk_type_name(t->type) : "unknown");
            goto done;
        }
        const nk_type_traits *from = nk_type_get(t->type), *to = nk_type_get(type);
        if (!from || !from->to_float) {
            st = nk_fail(err, NOOK_EUNSUPPORTED, "%s: tensor '%s': cannot read type %s", in_path, names[i],
                         nk_type_name(t->type) ? nk_type_name(t->type) : "unknown");
            goto done;
        }
        if (!to || (type != NK_TYPE_F32 && !to->from_float_ref && !to->from_float)) {
            st = nk_fail(err, NOOK_EUNSUPPORTED, "tensor '%s': cannot write type %s", names[i],
                         nk_type_name(type) ? nk_type_name(type) : "unknown");
            goto done;
        }
    }

    uint64_t total = 0, done_bytes = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) total += f->tensors[i].nbytes;
    if (opts->progress && !opts->progress(0, total, opts->ud)) {
        st = nk_fail(err, NOOK_EABORTED, "stopped");
        goto done;
    }
    st = nk_stream_open(out_path, w, infos, (size_t)f->n_tensors, &s, err);
    if (st) goto done;
    for (uint64_t k = 0; k < f->n_tensors && !st; k++) {
        const gguf_tensor *t = &f->tensors[order[k].idx];
        if (k > 0 && opts->progress && !opts->progress(done_bytes, total, opts->ud)) {
            st = nk_fail(err, NOOK_EABORTED, "stopped");
            break;
        }
        done_bytes += t->nbytes;
        if (infos[k].type == t->type) {
            st = nk_stream_write(s, t->data, (size_t)t->nbytes, err);
        } else {
            int64_t ne0 = (int64_t)t->ne[0];
            int64_t rows = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);  /* the reader checked overflow */
            src_rows c = { t->data, nk_row_size(t->type, ne0), ne0, nk_type_get(t->type)->to_float };
            st = nk_stream_rows(s, infos[k].type, ne0, rows, fill_from_src, &c, n_threads, err);
        }
        if (st) nk_prefix(err, "tensor '%s': ", infos[k].name);
    }
    if (!st && opts->progress) opts->progress(total, total, opts->ud);
    if (!st) {
        st = nk_stream_finish(s, err);
        s = NULL;
    }
done:
    nk_stream_abort(s);
    if (names)
        for (uint64_t i = 0; f && i < f->n_tensors; i++) nk_free((void *)names[i]);
    nk_free(names);
    nk_free(infos);
    nk_free(order);
    gguf_writer_free(w);
    gguf_free(f);
    nk_unmap(&map);
    return st;
}
