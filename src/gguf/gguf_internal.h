/*
 * gguf_internal.h: what the gguf files share and nothing outside src/gguf needs.
 */
#ifndef NOOK_GGUF_INTERNAL_H
#define NOOK_GGUF_INTERNAL_H

#include "gguf/gguf.h"
#include "tensor/types.h"

/* The parsed file plus its lookup tables. gguf_parse hands out &file; gguf_free and the
 * lookups cast back (file is the first member), so a gguf_file must never be copied
 * by value if the copy is to be searched. */
typedef struct nk_gguf_file {
    gguf_file f;
    uint32_t *kv_slots;     /* open addressing: kv index + 1, 0 = empty */
    uint64_t kv_cap;        /* power of two, >= 2 * n_kv */
    uint32_t *t_slots;      /* same for tensor names */
    uint64_t t_cap;
} nk_gguf_file;

/* Decode one packed little-endian scalar of type t at p into v. */
void nk_gguf_decode_scalar(gguf_type t, const uint8_t *p, gguf_value *v);

/* Block size, bytes per block and name of a ggml tensor type; NOOK_EUNSUPPORTED
 * (no message) if the id is unknown. */
nook_status nk_gguf_tensor_type(uint32_t type, uint64_t *blck, uint64_t *type_size, const char **name);

/* Validate dims and type and compute the tensor's byte size (overflow-checked).
 * EFORMAT / EUNSUPPORTED with a message (no "gguf:" prefix). */
nook_status nk_gguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *nbytes,
                                  nook_error *err);

#endif
