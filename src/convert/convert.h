/*
 * convert.h: the conversion layer. Two jobs:
 *
 *  (A) nk_synth_write: write a GGUF with random weights in the exact shapes, keys and
 *      tokenizer of a real model family (Qwen3, Llama 3.x, Gemma 3), so the engine can
 *      be tested and benchmarked at real sizes without downloading weights. Weights
 *      come from a seeded PRNG; the same parameters and seed give the same bytes.
 *  (B) nk_quantize_file: re-encode a GGUF to another type, choosing each tensor's type
 *      with llama.cpp's per-tensor mix rules (llama-quant.cpp), so that a Q4_K_M made
 *      here has the same tensor types as one made by llama-quantize.
 *
 * Both stream: tensors are produced a batch of rows at a time and written straight to
 * the output, so memory stays at a few MB per thread plus the metadata, whatever the
 * model size. Quantized blocks are produced with the traits' reference quantizers
 * (from_float_ref), the same functions llama-quantize uses without an imatrix.
 */
#ifndef NOOK_CONVERT_H
#define NOOK_CONVERT_H

#include "gguf/gguf.h"
#include "tensor/types.h"

/* ---- file types (llama_ftype, stored as general.file_type) ----------------------- */
enum {
    NK_FTYPE_ALL_F32 = 0, NK_FTYPE_F16 = 1, NK_FTYPE_Q4_0 = 2, NK_FTYPE_Q4_1 = 3,
    NK_FTYPE_Q8_0 = 7, NK_FTYPE_Q5_0 = 8, NK_FTYPE_Q5_1 = 9,
    NK_FTYPE_Q4_K_S = 14, NK_FTYPE_Q4_K_M = 15, NK_FTYPE_Q5_K_S = 16, NK_FTYPE_Q5_K_M = 17,
    NK_FTYPE_Q6_K = 18, NK_FTYPE_BF16 = 32
};

/* ftype by name ("Q4_K_M", "q8_0", "F32", "F16", "BF16", ...): its llama_ftype value,
 * or -1 if nook cannot produce it. */
int nk_ftype_from_name(const char *name);
/* Name of an ftype nook can produce ("Q4_K_M"), or NULL. */
const char *nk_ftype_name(int ftype);
/* The tensor type most tensors get under ftype (Q4_K_M -> Q4_K); -1 if unknown. */
int nk_ftype_default_type(int ftype);

/* ---- per-tensor type choice (llama.cpp's mix rules) ----------------------------- */

/* Counters llama.cpp keeps while walking a model's tensors in file order. Fill
 * n_attn_v and n_ffn_down by counting names first (nk_mix_init), then call
 * nk_mix_choose for every tensor in file order. */
typedef struct nk_mix {
    int  ftype;
    bool has_output;       /* the file has output.weight (else token_embd is the output) */
    int  n_attn_v, i_attn_v;
    int  n_ffn_down, i_ffn_down;
} nk_mix;

/* Count attn_v / ffn_down tensors and see whether output.weight exists. names[i] are
 * NUL-terminated tensor names in file order. */
void nk_mix_init(nk_mix *mix, int ftype, const char *const *names, size_t n);

/* The type tensor `name` with n_dims dims (ne[0] = row length) gets under the mix, given
 * its current type cur_type. Returns cur_type for tensors llama.cpp leaves alone
 * (1-D tensors, norms, names not ending in "weight"); for F32/F16/BF16 ftypes, every
 * 2-D weight gets that type. Applies the shape fallback (Q4_K -> Q5_0, Q6_K -> Q8_0,
 * ..., F16 when even a 32-block does not fit). Advances the counters in mix, so call
 * it exactly once per tensor, in file order. */
uint32_t nk_mix_choose(nk_mix *mix, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t cur_type);

/* The order llama.cpp's model loader keeps tensors in, and so the order llama-quantize
 * writes (and counts) them in: tensors outside "blk.N." first, then by layer number,
 * ties by byte-wise name. A strcmp-style result. */
int nk_tensor_order_cmp(const char *a, const char *b);

/* llama.cpp's use_more_bits(i, n): the first and last eighth of the layers and every
 * third layer in between. */
bool nk_use_more_bits(int i, int n);

/* ---- streaming GGUF writer ---------------------------------------------------------
 * gguf_writer (gguf.h) copies tensor data at add time. This writer takes the metadata
 * from a gguf_writer, the list of tensor infos up front, then each tensor's bytes in
 * order, so a multi-GB model is written with constant memory. The layout is the same
 * as gguf_write_file's: v3, tensors in the order declared, each at a 32-byte-aligned
 * offset, no gaps. Written to PATH.tmp and renamed on success. */
typedef struct nk_stream nk_stream;

typedef struct nk_stream_tensor {
    const char *name;      /* copied */
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
} nk_stream_tensor;

/* Serialize meta's keys and the tensor infos, and open the file. Errors: NOOK_EINVAL
 * (bad name, type, or shape), NOOK_EIO, NOOK_ENOMEM. meta is only read. */
nook_status nk_stream_open(const char *path, const gguf_writer *meta,
                           const nk_stream_tensor *tensors, size_t n_tensors,
                           nk_stream **out, nook_error *err);
/* Append bytes of the current tensor (tensors are filled in declaration order; a call
 * may cover part of a tensor or cross into the next one). */
nook_status nk_stream_write(nk_stream *s, const void *data, size_t len, nook_error *err);
/* Check every tensor got exactly its bytes, flush, rename into place; frees s. */
nook_status nk_stream_finish(nk_stream *s, nook_error *err);
/* Abandon: close and delete the temporary file; frees s. NULL is a no-op. */
void nk_stream_abort(nk_stream *s);

/* Produce one tensor through the stream, a batch of rows at a time, on n_threads
 * threads: fill(ctx, row, dst) writes ne0 floats for row `row` (it is called from
 * several threads at once, for different rows), then the rows are encoded to dst_type
 * with its reference quantizer. n_rows * ne0 elements in all. */
typedef void (*nk_row_fill_fn)(void *ctx, int64_t row, float *dst);
nook_status nk_stream_rows(nk_stream *s, uint32_t dst_type, int64_t ne0, int64_t n_rows,
                           nk_row_fill_fn fill, void *ctx, int n_threads, nook_error *err);

/* ---- (A) synthetic models -------------------------------------------------------- */
typedef enum { NK_SYNTH_LLAMA, NK_SYNTH_QWEN3, NK_SYNTH_GEMMA3 } nk_synth_arch;

typedef struct nk_synth_params {
    const char *preset;          /* name for general.name ("qwen3-0.6b"); may be NULL */
    nk_synth_arch arch;
    uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    bool     tied;               /* no output.weight: logits reuse token_embd */
    float    rope_base;          /* global layers for Gemma 3 */
    float    rope_base_swa;      /* Gemma 3 local layers (informational: llama.cpp fixes 10000) */
    float    rms_eps;
    uint32_t n_swa;              /* Gemma 3 sliding window */
    uint32_t swa_pattern;        /* Gemma 3: every swa_pattern-th layer is global */
    /* Llama 3 "llama3" rope scaling baked into rope_freqs.weight; factor 0 = none. */
    float    rope_scale_factor, rope_low_freq, rope_high_freq;
    uint32_t rope_orig_ctx;
    /* Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json) imported
     * with nk_hf_import_tokenizer; NULL writes no tokenizer keys (weights-only files for
     * tests of this layer). The token list is padded with [PADn] tokens, or cut, to
     * n_vocab rows, as convert_hf_to_gguf.py does. */
    const char *tokenizer_dir;
    int      ftype;              /* NK_FTYPE_*: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, ... */
    uint64_t seed;
    int      n_threads;          /* 0 = all cores */
} nk_synth_params;

/* Fill *p with a named preset (qwen3-0.6b, qwen3-8b, llama3.2-1b, gemma3-1b, qwen3-tiny,
 * qwen3-tiny-odd, llama3-tiny, gemma3-tiny), tokenizer_dir under models_dir
 * ("<models_dir>/hf/qwen3" ...; NULL leaves tokenizer_dir NULL), ftype F32, seed 1.
 * The tokenizer_dir string points into tok_buf (cap bytes). NOOK_ENOTFOUND for an
 * unknown name. */
nook_status nk_synth_preset(const char *name, const char *models_dir, char *tok_buf, size_t cap,
                            nk_synth_params *p, nook_error *err);
/* NULL-terminated list of preset names. */
const char *const *nk_synth_preset_names(void);

/* Write the model to out_path (atomically). Errors: NOOK_EINVAL for inconsistent
 * parameters (named), NOOK_EIO, NOOK_ENOMEM, and whatever the tokenizer import reports. */
nook_status nk_synth_write(const nk_synth_params *p, const char *out_path, nook_error *err);

/* ---- (B) quantize ---------------------------------------------------------------- */

/* Re-encode the GGUF at in_path into out_path (atomically) under ftype_name (Q4_0 Q4_1
 * Q5_0 Q5_1 Q8_0 Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K F16 BF16 F32), using llama.cpp's
 * per-tensor mix. Every metadata key is copied; general.file_type and
 * general.quantization_version (2) are set. Source tensors of any type nook can read are
 * dequantized first; tensors the mix leaves alone are copied byte for byte.
 * Tensors are written in llama.cpp's loader order (nk_tensor_order_cmp) and the two
 * file-type keys last, as llama-quantize does: for an F32/F16/BF16 source the output is
 * byte for byte llama-quantize's (no imatrix, default options).
 * n_threads 0 = all cores. Errors: NOOK_EINVAL (unknown ftype_name, in == out),
 * NOOK_EUNSUPPORTED (a source tensor type nook cannot read), NOOK_EIO, NOOK_EFORMAT. */
nook_status nk_quantize_file(const char *in_path, const char *out_path, const char *ftype_name,
                             int n_threads, nook_error *err);

/* nk_quantize_file with options (nk_quantize_file is this with all of them off, except
 * allow_requantize on, as it always was).
 *  - allow_requantize: re-encoding a tensor that is already quantized (not F32/F16/BF16)
 *    loses quality twice; like llama-quantize, it is refused with NOOK_EINVAL naming the
 *    tensor and its type unless this is set.
 *  - progress: called before the first tensor and after each one with the source bytes
 *    done and in all; returning false stops the work with NOOK_EABORTED, and the partial
 *    output (OUT.tmp) is removed. NULL: no reports. */
typedef struct nk_quantize_opts {
    bool allow_requantize;
    bool (*progress)(uint64_t done_bytes, uint64_t total_bytes, void *ud);
    void *ud;
} nk_quantize_opts;
nook_status nk_quantize_file_ex(const char *in_path, const char *out_path, const char *ftype_name,
                                int n_threads, const nk_quantize_opts *opts, nook_error *err);

#endif /* NOOK_CONVERT_H */
