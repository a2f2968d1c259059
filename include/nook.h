/*
 * nook.h: the public C API of nook, a local-first language-model runtime.
 *
 * Read this file top to bottom: it is the documentation.
 *
 * Conventions
 *  - Every fallible function returns a nook_status. NOOK_OK is 0. On failure the
 *    optional nook_error* (may be NULL) receives a one-line, human-readable message
 *    that names the problem (which file, which key, which tensor, which limit).
 *  - The library never prints, never exits, never aborts on bad input. Asserts guard
 *    only nook's own invariants.
 *  - Ownership: an object returned through an out-parameter belongs to the caller and
 *    is released with the matching *_free function. Pointers returned by accessors are
 *    borrowed and live as long as the object they came from.
 *  - Threads: a nook_model is immutable after load and may be shared by any number of
 *    threads and sessions. A nook_session (KV cache, scratch buffers, sampler state)
 *    is used by one thread at a time.
 */
#ifndef NOOK_H
#define NOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status and errors ------------------------------------------------------ */

typedef enum nook_status {
    NOOK_OK = 0,
    NOOK_EINVAL,       /* a caller passed an invalid argument                        */
    NOOK_ENOMEM,       /* an allocation failed                                       */
    NOOK_EIO,          /* open/read/write/mmap failed (errno text in the message)    */
    NOOK_EFORMAT,      /* a file or message is malformed (corrupt or hostile input)  */
    NOOK_EUNSUPPORTED, /* well-formed but not supported (architecture, tensor type)  */
    NOOK_ERANGE,       /* a limit was exceeded (e.g. prompt longer than the context) */
    NOOK_ENOTFOUND,    /* a named thing (key, tensor, model) does not exist          */
    NOOK_EINTERNAL,    /* a bug in nook                                              */
    NOOK_EBUSY,        /* a bounded queue is full; retry later (HTTP 503)            */
    NOOK_EABORTED,     /* the caller's abort callback stopped the work (see
                          nook_session_set_abort says what state it leaves)      */
} nook_status;

typedef struct nook_error {
    nook_status code;
    char msg[512];
} nook_error;

/* A short constant name for a status ("invalid argument", ...). Never NULL. */
const char *nook_status_str(nook_status s);

/* ---- Tokens ----------------------------------------------------------------- */

typedef int32_t nook_token;

/* ---- Models ------------------------------------------------------------------
 * A model is a GGUF file held read-only in memory: weights, hyperparameters,
 * vocabulary and chat template. By default the file is mapped (shared with the page
 * cache and other processes) with 2 MB pages where the kernel can (see
 * nk_map_file_huge in src/base); no_mmap reads it into private 2 MB-page memory. Loading validates the whole file (see src/gguf) and every tensor the
 * architecture needs (names, shapes, types) before returning.
 */
typedef struct nook_model nook_model;

typedef struct nook_model_params {
    int  n_threads;    /* threads for work done at load (0 = number of cores)   */
    bool no_mmap;      /* copy the file into private memory instead of mapping it */
    bool vocab_only;   /* load only the tokenizer and metadata (any architecture,
                          no tensors needed); such a model cannot make sessions  */
} nook_model_params;

/* Defaults: n_threads 0, mapped, full model. */
nook_model_params nook_model_default_params(void);

/* Load a GGUF model. On success *out owns the model (free with nook_model_free).
 * Errors: NOOK_EIO (missing/unreadable file), NOOK_EFORMAT (not a GGUF, corrupt),
 * NOOK_EUNSUPPORTED (architecture or tensor type nook does not run; named). */
nook_status nook_model_load(const char *path, const nook_model_params *params,
                            nook_model **out, nook_error *err);
void nook_model_free(nook_model *model);

/* Whether a mapped model's file is still what was loaded. Truncating or rewriting a
 * model file in place while it is mapped would otherwise crash the process (SIGBUS);
 * nook instead fails every later nook_session_decode with NOOK_EIO and this message,
 * and the model must be loaded again (docs/security.md). Replacing the file by
 * rename is harmless. A model read with no_mmap is a private copy and always passes.
 * Thread-safe; costs one fstat. */
nook_status nook_model_check(const nook_model *model, nook_error *err);

/* Block until the work a load leaves running is done: on CPUs with AVX-512 VNNI the
 * Q4_K and Q6_K weights of a mapped model are re-laid for the batch kernels on a
 * thread of nook's own after nook_model_load returns (docs/design.md, "Repacked
 * weights"); decoding meanwhile reads the file's layout, more slowly, with the same
 * results. Benchmarks call this before timing. Thread-safe; returns at once when
 * nothing is pending. */
void nook_model_wait_ready(const nook_model *model);

/* Borrowed strings, valid while the model lives. */
const char *nook_model_arch(const nook_model *m);        /* "llama", "qwen3", ... */
const char *nook_model_name(const nook_model *m);        /* general.name or ""    */
const char *nook_model_chat_template(const nook_model *m); /* NULL if none       */
int      nook_model_n_vocab(const nook_model *m);
int      nook_model_n_ctx_train(const nook_model *m);
int      nook_model_n_embd(const nook_model *m);
int      nook_model_n_layer(const nook_model *m);
uint64_t nook_model_n_params(const nook_model *m);

/* Metadata lookup (llama.cpp's llama_model_meta_*): the GGUF's keys in file order.
 * val_str renders a value as text (numbers in C's %g/%lld forms, bools as true/false,
 * strings as they are, arrays as "[TYPE x N]") into buf (cap bytes, NUL-terminated,
 * truncated) and returns the length the whole text needs, or -1 if the key is absent
 * (or i out of range). */
int nook_model_meta_count(const nook_model *m);
int nook_model_meta_key_by_index(const nook_model *m, int i, char *buf, size_t cap);
int nook_model_meta_val_str(const nook_model *m, const char *key, char *buf, size_t cap);

/* Memory figures a scheduler needs: bytes of weights (the tensors' data in the file)
 * and bytes of KV cache per token per sequence for a cache type (a session holds
 * n_seq_max x n_ctx of them). */
uint64_t nook_model_weight_bytes(const nook_model *m);
uint64_t nook_model_kv_bytes_per_token(const nook_model *m, int kv_type /* nook_kv_type */);

/* ---- Logging ---------------------------------------------------------------------
 * The library never prints; it reports through one process-wide sink the embedder
 * installs (default: discard). fn may be called from any thread that calls into nook,
 * one message (one line, no newline) at a time per call. NULL restores the default. */
typedef enum nook_log_level { NOOK_LOG_DEBUG, NOOK_LOG_INFO, NOOK_LOG_WARN, NOOK_LOG_ERROR } nook_log_level;
void nook_log_set(void (*fn)(nook_log_level level, const char *msg, void *ud), void *ud);

/* ---- Tokenizer ----------------------------------------------------------------
 * The model's own tokenizer, exactly as llama.cpp runs it.
 */

/* Tokenize len bytes of text. add_special adds BOS/EOS as the vocabulary asks;
 * parse_special lets control tokens written in the text ("<|im_start|>") become their
 * ids (off for user content). Writes at most cap ids to out and sets *n_out to the
 * number the text needs, so a too-small buffer can be retried (NOOK_ERANGE).
 * Invalid UTF-8 is refused with NOOK_EINVAL and the byte offset in the message. */
nook_status nook_tokenize(const nook_model *m, const char *text, size_t len,
                          bool add_special, bool parse_special,
                          nook_token *out, size_t cap, size_t *n_out, nook_error *err);

/* The raw bytes of one token's text (byte tokens give their single byte, "▁" becomes a
 * space). Control tokens give their text only when special is true. Returns the number
 * of bytes the piece needs (may exceed cap; nothing past cap is written), or -1 for an
 * id out of range. A piece may be part of a multi-byte character: see nook_detok. */
int nook_token_to_piece(const nook_model *m, nook_token tok, bool special,
                        char *buf, size_t cap);

nook_token nook_token_bos(const nook_model *m);     /* -1 if none */
nook_token nook_token_eos(const nook_model *m);     /* -1 if none */
bool       nook_token_is_eog(const nook_model *m, nook_token tok); /* ends generation */

/* Streaming detokenizer: feeds token pieces and releases only complete UTF-8
 * characters, so a stream never shows half a character. A byte sequence that can
 * never become valid is released as U+FFFD. */
typedef struct nook_detok {
    const nook_model *model;
    bool   special;       /* render control tokens                   */
    char   pending[8];    /* bytes of an incomplete character        */
    int    n_pending;
} nook_detok;
void nook_detok_init(nook_detok *d, const nook_model *m, bool special);
/* Appends the text that became complete after tok to buf (cap bytes, NUL-terminated);
 * returns the number of bytes written (a piece is at most a few hundred bytes, so a
 * 1 KiB buffer always suffices). */
size_t nook_detok_push(nook_detok *d, nook_token tok, char *buf, size_t cap);
/* Flushes what is left (incomplete bytes become U+FFFD). */
size_t nook_detok_flush(nook_detok *d, char *buf, size_t cap);

/* ---- Sessions ---------------------------------------------------------------
 * A session is one conversation's state over a shared model: the KV cache, scratch
 * buffers and thread pool. All memory is allocated at creation; decoding allocates
 * nothing.
 */
typedef struct nook_session nook_session;

/* KV cache element types (llama.cpp's --cache-type-k/-v; Ollama's
 * OLLAMA_KV_CACHE_TYPE). Q8_0 halves the cache (34 bytes per 32 values instead of
 * 64) at a small cost in accuracy, Q4_0 quarters it (18 bytes) at a larger one
 * (docs/performance.md measures both); they need flash attention and head sizes
 * that are multiples of 32, as in llama.cpp. */
typedef enum nook_kv_type { NOOK_KV_F16 = 0, NOOK_KV_Q8_0, NOOK_KV_F32, NOOK_KV_Q4_0 } nook_kv_type;

/* How nook_session_embeddings_seq pools a sequence's hidden states (the output of
 * the final norm, as llama.cpp's embeddings): UNSPECIFIED takes the model's
 * <arch>.pooling_type (mean when absent); NONE keeps one vector per batch entry that
 * asked for output (nook_session_embeddings_ith). */
typedef enum nook_pooling {
    NOOK_POOLING_UNSPECIFIED = -1,
    NOOK_POOLING_NONE = 0,
    NOOK_POOLING_MEAN = 1,
    NOOK_POOLING_CLS = 2,     /* the sequence's first token */
    NOOK_POOLING_LAST = 3,    /* the sequence's last token (Qwen3-Embedding) */
} nook_pooling;

typedef struct nook_session_params {
    int n_ctx;      /* context length in tokens of EACH sequence (0 = min(n_ctx_train,
                       4096)); the KV cache holds n_seq_max x n_ctx positions       */
    int n_batch;    /* max tokens per forward pass (0 = 512)                    */
    int n_threads;  /* threads of the process-wide pool this session uses (0 = all
                       of them; see "Threads" below)                            */
    bool plain_attn; /* false: attention rounds as llama.cpp's flash-attention
                        kernel (its CPU default, -fa auto); true: as its non-flash
                        path (-fa off). */
    nook_kv_type kv_type; /* cache type for K and V (default f16, llama.cpp's)     */
    int n_seq_max;  /* sequences the cache holds at once, ids 0..n_seq_max-1 (0 = 1) */
    bool embeddings; /* decodes produce embeddings (hidden states after the final
                        norm) instead of logits                                  */
    nook_pooling pooling; /* with embeddings: how a sequence is pooled (default
                        UNSPECIFIED: the model's pooling_type, else mean)        */
} nook_session_params;

/* Defaults: everything 0 (see each field), pooling UNSPECIFIED. */
nook_session_params nook_session_default_params(void);

nook_status nook_session_new(const nook_model *m, const nook_session_params *p,
                             nook_session **out, nook_error *err);
void nook_session_free(nook_session *s);

/* Number of tokens sequence 0 holds in the KV cache, and the capacity of each
 * sequence. */
int nook_session_n_past(const nook_session *s);
int nook_session_n_ctx(const nook_session *s);
/* The model the session runs (borrowed). */
const nook_model *nook_session_model(const nook_session *s);

/* Forget everything of sequence 0 from position pos on (0 clears it). */
void nook_session_truncate(nook_session *s, int pos);

/* Run n tokens of sequence 0 through the model at positions n_past..n_past+n-1, in
 * batches of at most n_batch (the single-sequence case of nook_session_decode_batch,
 * with the same results). Afterwards nook_session_logits() holds the logits of the last token.
 * If all_logits is non-NULL it receives n*n_vocab floats: the logits at every
 * position (used by tests and perplexity). NOOK_ERANGE if the cache would overflow. */
nook_status nook_session_decode(nook_session *s, const nook_token *tokens, int n,
                                float *all_logits, nook_error *err);

/* Raw logits (n_vocab floats) of the last decoded token. Borrowed; valid until the
 * next decode. */
const float *nook_session_logits(const nook_session *s);

/* Context shift (src/model/context.c): make room in a full cache the way Ollama and
 * llama.cpp do, keeping the first n_keep tokens (BOS, system prompt), dropping the
 * n_discard tokens after them and sliding the rest down. The caller keeps the token
 * history: history[0..*n_history) is the sequence it wants in the cache, of which the
 * cache holds at least the first n_keep (it may hold all of them, or all but a last
 * sampled token not yet decoded). Afterwards history is compacted in place, *n_history
 * is reduced by n_discard, the cache holds exactly the compacted history, and
 * nook_session_logits() gives the logits after its last token.
 * How: the cache is truncated to n_keep and the kept tail is decoded again at its new
 * positions (one batched decode of *n_history - n_keep - n_discard tokens), so the
 * result is what decoding the compacted sequence from the start gives: exact RoPE
 * positions, correct for sliding-window models too. (llama.cpp instead re-rotates the
 * cached keys in place: cheaper, but its f16 keys then differ from a fresh decode.)
 * The usual choice, Ollama's and llama.cpp's: n_discard = (n_past - n_keep) / 2.
 * Errors: NOOK_EINVAL for a NULL argument, n_keep < 0, n_discard < 1, nothing left
 * after the discarded run (n_keep + n_discard >= *n_history), a cache holding fewer
 * than n_keep or more than *n_history tokens; NOOK_ERANGE if the compacted history
 * still exceeds the context. Then nothing changed. A decode error after that (a token
 * out of range in history) leaves history unchanged and the cache cut to n_keep. */
nook_status nook_session_shift(nook_session *s, nook_token *history, int *n_history,
                               int n_keep, int n_discard, nook_error *err);

/* ---- Sequences and batches ------------------------------------------------------
 * A session's KV cache holds up to n_seq_max independent sequences (conversations),
 * ids 0..n_seq_max-1. Each sequence is a run of positions 0..len-1: a batch appends to
 * the end of a sequence, and a sequence is cut back, cleared or forked, never edited
 * in the middle. One decode runs the tokens of several sequences in a single forward
 * pass: every weight matrix is read from memory once per step for all of them, so
 * decoding four conversations costs little more than one (decode is bound by memory
 * bandwidth). Attention is masked per sequence (and a sliding window slides per
 * sequence): the results for a sequence are those of decoding it alone, up to the
 * float summation order of the batch matmul kernels (which depends on how many rows a
 * step has; ~1e-5 relative, see docs/design.md).
 *
 * The cache remembers the token id at every position, so a caller can find which
 * sequence already holds the longest prefix of a new request and decode only the
 * rest (nook_session_prefix_match).
 */
typedef int32_t nook_seq;

/* A batch: n_tokens entries, each a token, its position in its sequence, the
 * sequence, and whether the decode should return logits (or embeddings) for it.
 * The arrays hold cap entries and belong to the batch (nook_batch_init/free). */
typedef struct nook_batch {
    int         n_tokens;
    int         cap;
    nook_token *token;
    int32_t    *pos;     /* must be exactly the sequence's next position (its length,
                            then +1 per earlier entry of the same sequence); -1 means
                            "the next one" */
    nook_seq   *seq;
    bool       *output;
} nook_batch;

/* Allocate arrays for cap entries (cap >= 1); n_tokens = 0. NOOK_ENOMEM, NOOK_EINVAL. */
nook_status nook_batch_init(nook_batch *b, int cap, nook_error *err);
void nook_batch_free(nook_batch *b);       /* arrays freed, *b zeroed; NULL-safe  */
void nook_batch_clear(nook_batch *b);      /* n_tokens = 0                          */
/* Append one entry; false (and nothing added) when the batch is full. */
bool nook_batch_add(nook_batch *b, nook_token tok, int32_t pos, nook_seq seq, bool output);

/* Decode every entry of b in order of appearance: entries may interleave sequences
 * freely, but within a sequence they must be consecutive positions continuing it.
 * The batch is cut into forward passes of at most n_batch entries. Afterwards
 * nook_session_logits_ith(s, i) gives the logits of entry i if it asked for output.
 * Errors (nothing decoded, the cache as before): NOOK_EINVAL (token out of range,
 * sequence id out of range, a position that does not continue its sequence),
 * NOOK_ERANGE (a sequence would exceed n_ctx), NOOK_ENOMEM (the output buffer could
 * not grow to the batch's number of outputs; it grows once and is then reused).
 * NOOK_EABORTED (see nook_session_set_abort): the passes that completed stay in the
 * cache (whole passes of n_batch entries), the interrupted one is forgotten;
 * nook_session_seq_pos_max tells where each sequence stands. */
nook_status nook_session_decode_batch(nook_session *s, const nook_batch *b, nook_error *err);

/* Logits (n_vocab floats) of entry i of the last batch decoded, or NULL if it did not
 * ask for output or i is out of range. After nook_session_decode: i = n-1 (the last
 * token; with all_logits, the caller has them). Borrowed; valid until the next decode. */
const float *nook_session_logits_ith(const nook_session *s, int i);

int  nook_session_n_seq_max(const nook_session *s);
/* The last position seq holds, -1 if empty (its length is this + 1). */
int  nook_session_seq_pos_max(const nook_session *s, nook_seq seq);
/* Remove positions [p0, p1) of seq (p1 < 0: to the end; seq < 0: every sequence).
 * Sequences are runs from position 0, so only a tail can go: returns false (and
 * changes nothing) when [p0, p1) would leave a hole, true otherwise. */
bool nook_session_seq_rm(nook_session *s, nook_seq seq, int p0, int p1);
/* Fork: dst becomes dst's positions [0, p0) followed by src's [p0, p1) (p1 < 0: all
 * of src), K and V copied (n-way sampling from one prompt; a shared system prompt).
 * Returns false (nothing changed) for ids out of range or p0 beyond dst's length or
 * src's. Costs a copy of the K/V rows (~0.1 MB per token on qwen3-0.6b). */
bool nook_session_seq_cp(nook_session *s, nook_seq src, nook_seq dst, int p0, int p1);
/* Empty seq (seq < 0: every sequence). */
void nook_session_seq_clear(nook_session *s, nook_seq seq);
/* The longest prefix of toks[0..n) that a cached sequence holds: returns its length
 * and sets *best (may be NULL) to that sequence (the lowest id on ties; -1 when no
 * sequence shares even one token). To reuse it: seq_rm(best, len, -1) and decode
 * toks[len..n). (Keep at least one token to decode: the logits of the last prompt
 * token are needed to sample the next.) */
int  nook_session_prefix_match(const nook_session *s, const nook_token *toks, int n, nook_seq *best);

/* ---- Cancellation -----------------------------------------------------------------
 * fn(ud) is called from the decoding thread, between layers and between chunks of
 * work inside the long matrix products and attention (every few milliseconds at
 * most, usually far more often), so it must be cheap and must not call into the
 * session. When it returns true the decode stops promptly and returns
 * NOOK_EABORTED; the cache then holds exactly the passes completed before. NULL
 * removes the callback. Typical use: fn reads an atomic flag another thread sets
 * when its client goes away. */
void nook_session_set_abort(nook_session *s, bool (*fn)(void *ud), void *ud);

/* ---- Embeddings --------------------------------------------------------------------
 * With nook_session_params.embeddings, a decode produces the hidden states after the
 * final norm (n_embd floats per token, as llama.cpp's embeddings) instead of logits. */

/* The pooled embedding of seq over its entries in the last batch decoded (raw: not
 * normalized), or NULL if the batch had none of its entries, pooling is NONE or
 * embeddings are off. Borrowed; valid until the next decode. */
const float *nook_session_embeddings_seq(const nook_session *s, nook_seq seq);
/* With pooling NONE: the embedding of batch entry i (if it asked for output), else NULL. */
const float *nook_session_embeddings_ith(const nook_session *s, int i);
/* The pooling this session applies (never UNSPECIFIED). */
nook_pooling nook_session_pooling(const nook_session *s);

/* Embed texts in one call (Ollama's /api/embed): each text is tokenized as llama.cpp
 * does for embeddings (BOS/EOS as the vocabulary asks, so Qwen3-Embedding's GGUFs get
 * their end-of-text token; control tokens in the text stay text), decoded as its own
 * sequence (up to n_seq_max texts per pass), pooled with the session's pooling, and
 * L2-normalised unless raw. out receives n_texts x n_embd floats. The session must have
 * been created with embeddings on and a pooling other than NONE; its sequences are
 * cleared. A text longer than n_ctx is cut to n_ctx tokens when truncate, else
 * NOOK_ERANGE. *n_tokens (may be NULL) receives the total tokens decoded (Ollama's
 * prompt_eval_count). An empty text embeds its special tokens, or fails with
 * NOOK_EINVAL if it has none. */
nook_status nook_session_embed(nook_session *s, const char *const *texts, int n_texts, bool raw, bool truncate,
                               float *out, int *n_tokens, nook_error *err);

/* Convenience: a session for the texts (n_threads 0 = all), nook_session_embed, freed.
 * pooling UNSPECIFIED takes the model's. */
nook_status nook_embed(const nook_model *m, const char *const *texts, int n_texts, nook_pooling pooling, bool raw,
                       int n_threads, float *out, nook_error *err);

/* ---- Threads ------------------------------------------------------------------------
 * Every session and model shares one process-wide pool of worker threads, started on
 * first use and sized once: by default one thread per core (nk_n_cores), or by
 * nook_set_max_threads called before any work. A decode leases
 * min(n_threads, free cores) of them (its own thread counts as one) for its duration
 * and waits, first come first served, while every core is leased, so sessions
 * decoding at the same time share the cores and never oversubscribe them. Results do
 * not depend on the number of threads a decode got. */

/* Size of the process-wide pool (n >= 1). NOOK_EINVAL if the pool has already started
 * with another size. */
nook_status nook_set_max_threads(int n, nook_error *err);
int nook_max_threads(void);

/* ---- Sampling -------------------------------------------------------------------
 * A sampler chain: repeat penalty -> top-k -> top-p -> min-p -> temperature -> draw.
 * Temperature <= 0 is greedy (argmax of the raw logits).
 */
typedef struct nook_sampler_params {
    float    temperature;     /* 0.8  */
    int      top_k;           /* 40 (<= 0: whole vocabulary)    */
    float    top_p;           /* 0.9 (1.0 disables)             */
    float    min_p;           /* 0.0 (disabled)                 */
    float    repeat_penalty;  /* 1.0 (disabled)                 */
    int      repeat_last_n;   /* 64 (0 disables, -1 = context)  */
    float    presence_penalty;  /* 0 */
    float    frequency_penalty; /* 0 */
    uint64_t seed;            /* NOOK_SEED_RANDOM (the default) = from the clock;
                                 every other value, 0 included, is a fixed seed  */
} nook_sampler_params;

/* The seed that means "pick one from the clock" (Ollama's seed -1 cast to uint64 is
 * this value), so that 0 stays an ordinary seed. */
#define NOOK_SEED_RANDOM UINT64_MAX

/* Ollama's defaults, as listed above (seed NOOK_SEED_RANDOM). */
nook_sampler_params nook_sampler_default_params(void);

typedef struct nook_sampler nook_sampler;
nook_status nook_sampler_new(const nook_sampler_params *p, int n_vocab,
                             nook_sampler **out, nook_error *err);
void nook_sampler_free(nook_sampler *smp);
/* Pick the next token from logits (not modified). Remembers the token for the
 * repeat penalties. Allocates nothing. */
nook_token nook_sampler_sample(nook_sampler *smp, const float *logits);
/* Tell the sampler about tokens it did not pick (the prompt), for the penalties. */
void nook_sampler_accept(nook_sampler *smp, nook_token tok);
void nook_sampler_reset(nook_sampler *smp);

/* ---- Generation ---------------------------------------------------------------
 * The generation loop (src/engine): a prompt in, a stream of events out. The same
 * per-sequence state (nook_gen: sampler, streaming detokenizer, stop-string matcher,
 * thinking splitter, log-probabilities, counters) serves the one-sequence driver
 * nook_generate (used by `nook run`) and the multi-sequence scheduler (nook_sched,
 * below, used by the server): whoever decodes feeds it the logits of each step and it
 * returns the next token.
 *
 * What a caller sees, per request: zero or more NOOK_EVENT_TOKEN events (one per
 * sampled token, end-of-generation tokens excluded), at most one NOOK_EVENT_SHIFT per
 * context shift, then exactly one NOOK_EVENT_DONE, always last (also after an error or
 * a cancel). Text in events is always whole UTF-8 characters; a character split across
 * tokens arrives with the token that completes it.
 */

/* Why generation ended. nook_done_reason_str gives Ollama's words: "stop", "length",
 * "cancelled", "error". */
typedef enum nook_done_reason {
    NOOK_DONE_NONE = 0,   /* not finished                                              */
    NOOK_DONE_STOP,       /* an end-of-generation token or a stop string               */
    NOOK_DONE_LENGTH,     /* num_predict tokens, or a full context that may not shift  */
    NOOK_DONE_CANCELLED,  /* the callback returned false, or a cancel call             */
    NOOK_DONE_ERROR,      /* a decode failed (the DONE event carries the status)       */
} nook_done_reason;
const char *nook_done_reason_str(nook_done_reason r);

/* One chat message (the OpenAI/Ollama shape, text only). Strings are UTF-8 and
 * NUL-terminated; thinking (an earlier assistant turn's reasoning) may be NULL. */
typedef struct nook_message {
    const char *role;       /* "system", "user", "assistant", "tool" */
    const char *content;
    const char *thinking;
} nook_message;

/* What to generate from. Exactly one of messages / messages_json / text is used, in
 * that order of precedence (messages when n_messages > 0).
 *  - messages, messages_json: a chat, rendered through the chat template with
 *    add_generation_prompt (Ollama's /api/chat). messages_json is a JSON array of
 *    OpenAI-shaped message objects (tool_calls, tool results...), given to the template
 *    as is; tools_json (a JSON array, or NULL) is the template's `tools`.
 *  - text: Ollama's /api/generate prompt: rendered as [system?, user text] through the
 *    template, or, with raw, tokenized as written (control tokens in it parsed, no
 *    template). A model without a template is plain completion of the text.
 * template_src replaces the model's chat template (Jinja, as in tokenizer.chat_template;
 * a template nook's interpreter cannot run falls back to the family's built-in format,
 * logged as a warning). think: -1 the template's default, 0 off, 1 on (the template's
 * enable_thinking); when the template thinks and think != 0, the answer is split into
 * thinking and content. context: tokens from an earlier answer's DONE event (Ollama's
 * `context`), put before the rendered prompt (no second BOS); with no messages and no
 * text, the context alone is the prompt (a caller that tokenized it already). */
typedef struct nook_prompt {
    const nook_message *messages;
    int n_messages;
    const char *messages_json;
    const char *tools_json;
    const char *text;
    const char *system;
    const char *template_src;
    bool raw;
    int  think;
    const nook_token *context;
    int  n_context;
} nook_prompt;

/* Zeroed, with think = -1. */
nook_prompt nook_prompt_default(void);

/* The prompt as text, template applied (what `nook run --show-prompt` prints). *out is
 * NUL-terminated and owned by the caller (nook_free). Errors: NOOK_EINVAL (no prompt,
 * bad JSON, a template that raised), NOOK_EUNSUPPORTED, NOOK_ERANGE (template limits). */
nook_status nook_prompt_render(const nook_model *m, const nook_prompt *p, char **out,
                               size_t *out_len, nook_error *err);

/* The prompt as tokens: rendered, tokenized (BOS added when the vocabulary adds one
 * and the text does not start with it), after p->context. *out is owned by the caller
 * (nook_free). *split_thinking (may be NULL) tells whether the answer is to be split
 * into thinking and content (pass it to nook_gen_begin). Invalid UTF-8 is NOOK_EINVAL. */
nook_status nook_prompt_tokenize(const nook_model *m, const nook_prompt *p, nook_token **out,
                                 int *n_out, bool *split_thinking, nook_error *err);

/* Frees memory the library returned (rendered text, token arrays). NULL is a no-op. */
void nook_free(void *p);

/* The constrained-decoding hook, called on every step before sampling. mask receives
 * a writable copy of the step's logits and sets the tokens that may not come next to
 * -INFINITY (return non-OK to end generation with NOOK_DONE_ERROR); accept is told
 * every token picked, the end-of-generation one included, to advance its state. Either
 * may be NULL. Called on the thread that drives the sequence. Log-probabilities are
 * those of the model, before the mask. */
typedef struct nook_constraint {
    nook_status (*mask)(void *ud, float *logits, int n_vocab, nook_error *err);
    nook_status (*accept)(void *ud, nook_token tok, nook_error *err);
    void *ud;
} nook_constraint;

#define NOOK_MAX_TOP_LOGPROBS 20

typedef struct nook_gen_params {
    nook_sampler_params sampler;
    int   num_predict;      /* tokens to generate: >= 0, -1 until an end-of-generation
                               token (bounded at 10 contexts when shifting, as Ollama),
                               -2 until the context is full (no shift)        [-1] */
    const char *const *stop; /* n_stop stop strings (non-empty UTF-8): generation ends
                               before the first occurrence, which is not emitted; text
                               that may still become one is held back           */
    int   n_stop;
    int   num_keep;         /* tokens after BOS that a context shift keeps (Ollama's
                               num_keep); -1 the whole prompt                    [4] */
    bool  no_shift;         /* a full context ends with "length" (Ollama's shift:false) */
    bool  logprobs;         /* per token: log-probability and entropy            */
    int   top_logprobs;     /* 0..NOOK_MAX_TOP_LOGPROBS alternatives per token (implies
                               logprobs)                                          */
    const char *grammar;    /* GBNF text constraining the output, or NULL        */
    const char *format;     /* "json" or a JSON schema (text): Ollama's format, or NULL.
                               At most one of grammar/format. The output then stays in
                               the language: each step's logits are masked before the
                               sampler chain, end-of-generation only where it may end
                               (docs/grammar.md). Map OpenAI response_format
                               json_object to "json", json_schema to its "schema". */
    nook_constraint constraint; /* a caller's own mask (mask == NULL: none; not
                               together with grammar/format)                     */
    int64_t load_ns;        /* reported as the load duration (the caller's model load) */
} nook_gen_params;

/* Ollama's defaults: nook_sampler_default_params, num_predict -1, num_keep 4, no stop
 * strings, no log-probabilities. */
nook_gen_params nook_gen_default_params(void);

/* Timings as Ollama reports them (nanoseconds). prompt_eval_count is the number of
 * prompt tokens actually decoded: with prefix reuse, only those after the cached
 * prefix. eval_count counts generated tokens (the end-of-generation token excluded). */
typedef struct nook_timings {
    int64_t total_ns, load_ns, prompt_eval_ns, eval_ns;
    int     prompt_eval_count, eval_count;
} nook_timings;

typedef struct nook_top_logprob {
    nook_token id;
    double logprob;
} nook_top_logprob;

typedef enum nook_event_kind {
    NOOK_EVENT_TOKEN = 1,  /* a token was sampled                                   */
    NOOK_EVENT_SHIFT,      /* the driver shifted the context                        */
    NOOK_EVENT_TEXT,       /* text only, no token: released within one step when it
                              overflows an event's buffer (a long run of held-back
                              reasoning newlines); treat as a TOKEN event's text      */
    NOOK_EVENT_DONE,       /* the end; always the last event                        */
} nook_event_kind;

/* An event. Pointers are borrowed, valid during the callback only.
 *  content/thinking: answer and reasoning text released by this event (whole UTF-8;
 *    either may be empty). Stop strings hold text back, so it can lag its token; DONE
 *    releases what is left. Without a thinking split everything is content.
 *  piece: the raw bytes this token completed (the detokenizer's output, before stop
 *    strings and the thinking split; DONE: a leftover partial character as U+FFFD).
 *  split_thinking: this request splits reasoning from the answer (every event).
 *  TOKEN: id, index (0-based among generated tokens), in_thinking (the token belongs
 *    to the reasoning, tags included), and with logprobs its log-probability, the
 *    entropy (nats) of the model's untempered distribution and the n_top best tokens.
 *  SHIFT: shift_keep tokens kept, shift_discard dropped.
 *  DONE: done_reason, status/error (NOOK_DONE_ERROR), context_full (ended because the
 *    context filled), timings, context (prompt + generated tokens: Ollama's
 *    `context`, to pass back as nook_prompt.context), and stop: the stop string that
 *    ended generation (NULL when none did; Anthropic's `stop_sequence`), valid during
 *    the callback. */
typedef struct nook_event {
    nook_event_kind kind;
    const char *content;  size_t content_len;
    const char *thinking; size_t thinking_len;
    const char *piece;    size_t piece_len;
    nook_token id;
    int   index;
    bool  split_thinking, in_thinking;
    double logprob, entropy;
    const nook_top_logprob *top;
    int   n_top;
    int   shift_keep, shift_discard;
    nook_done_reason done_reason;
    bool  context_full;
    nook_status status;
    const char *error;
    const nook_timings *timings;
    const nook_token *context;
    int   n_context;
    const char *stop;
} nook_event;

/* The event callback. Return false to cancel (the DONE event still follows, with
 * NOOK_DONE_CANCELLED). Runs on the thread that decodes; it must not call back into the
 * session or scheduler that runs it, and should not block for long (a scheduler's
 * other sequences wait for it). */
typedef bool (*nook_event_fn)(const nook_event *ev, void *ud);

/* One sequence, start to finish, on a session (blocking), in its sequence 0. Renders
 * and tokenizes the prompt; when sequence 0 already holds a prefix of it (the previous
 * turn of the conversation), the cache is cut to that prefix and only the rest is
 * decoded (prompt_eval_count says how many); then samples until a stop; a full context is shifted (nook_session_shift) unless no_shift. Events go to
 * on_event. Setup errors (bad prompt, a prompt longer than the context: NOOK_ERANGE,
 * bad params or grammar: NOOK_EINVAL/NOOK_EFORMAT, a schema keyword not supported:
 * NOOK_EUNSUPPORTED) return before any
 * event; after the first event every outcome, errors included, ends with the DONE
 * event, and the return value is its status. The token loop allocates nothing. */
nook_status nook_generate(nook_session *s, const nook_prompt *prompt, const nook_gen_params *p,
                          nook_event_fn on_event, void *ud, nook_error *err);

/* ---- The per-sequence state machine (for drivers; most callers want nook_generate or
 * nook_sched). Protocol, one request at a time:
 *   nook_gen_begin(prompt tokens) -> decode the prompt -> nook_gen_prompt_done ->
 *   loop { nook_gen_step(logits of the last token) == NOOK_GEN_DECODE: decode *next }
 *   and when the driver ends it (full context without shift, decode error, cancel):
 *   nook_gen_finish. A nook_gen is used by one thread at a time. */
typedef struct nook_gen nook_gen;

/* Buffers sized for contexts of up to n_ctx tokens. */
nook_status nook_gen_new(const nook_model *m, int n_ctx, nook_gen **out, nook_error *err);
void nook_gen_free(nook_gen *g);

/* Start a request, on a new nook_gen or one whose earlier request is over (its DONE
 * was sent): every per-request state is reset, and the buffers an earlier request
 * sized (sampler, text, context array, the grammar's vocabulary trie) are reused,
 * grown only when this one needs more; the steps allocate nothing. An error leaves
 * the nook_gen ready for another begin. The prompt (copied) seeds the penalties and the DONE event's context; split_thinking
 * comes from nook_prompt_tokenize (a prompt ending in "<think>" starts inside the
 * reasoning). Errors: NOOK_EINVAL (params), NOOK_EFORMAT (a malformed grammar, with its
 * line and column), NOOK_EUNSUPPORTED (a schema keyword the converter refuses, named),
 * NOOK_ERANGE (a grammar or schema over its size limits), NOOK_ENOMEM. The first
 * constrained request builds the vocabulary trie (kept for later requests). */
nook_status nook_gen_begin(nook_gen *g, const nook_gen_params *p, const nook_token *prompt,
                           int n_prompt, bool split_thinking, nook_event_fn on_event, void *ud,
                           nook_error *err);

/* The prompt's last chunk is decoded; n_evaluated of its tokens were decoded (the rest
 * came from a cached prefix). Starts the eval clock. */
void nook_gen_prompt_done(nook_gen *g, int n_evaluated);

typedef enum nook_gen_next {
    NOOK_GEN_DECODE = 1,  /* decode *next, then call nook_gen_step again */
    NOOK_GEN_DONE,        /* finished: the DONE event has been sent       */
} nook_gen_next;

/* Sample from the logits of the last decoded token (n_vocab floats, not modified),
 * emit the token's event; NOOK_GEN_DONE on an end-of-generation token, a stop string,
 * num_predict, a cancel or a constraint error. Allocates nothing. */
nook_gen_next nook_gen_step(nook_gen *g, const float *logits, nook_token *next);

/* The driver shifted the context: emits the SHIFT event. */
void nook_gen_shifted(nook_gen *g, int n_keep, int n_discard);

/* End now (no-op when already done): releases held text and sends DONE with reason r
 * (NOOK_DONE_ERROR: status st and message msg; context_full for a full context). */
void nook_gen_finish(nook_gen *g, nook_done_reason r, bool context_full, nook_status st,
                     const char *msg);

/* Ask for a cancel from any thread: the next nook_gen_step ends with "cancelled". */
void nook_gen_cancel(nook_gen *g);

bool nook_gen_is_done(const nook_gen *g);
/* Generated tokens so far, and the number limit of this request (num_predict bounded). */
int  nook_gen_n_generated(const nook_gen *g);
/* The shift's kept prefix for this request (num_keep resolved against the prompt and
 * capped at n_ctx - 4, as llama.cpp). */
int  nook_gen_shift_keep(const nook_gen *g, int n_ctx);
/* Whether a full context may be shifted for this request (not no_shift, not -2). */
bool nook_gen_may_shift(const nook_gen *g);


/* ---- Scheduler: many requests, one batch per step ----------------------------------
 * One loaded model serving several requests at once (the server's engine). A
 * scheduler owns a session whose cache holds n_parallel sequences ("slots") and one
 * worker thread. Requests are submitted from any thread into a bounded queue; each
 * step the worker builds ONE batch from every active sequence (a chunk of each new
 * request's prompt plus one token for each generating sequence) and decodes it with
 * nook_session_decode_batch, so the weights are streamed once per step for all of
 * them; each sequence's nook_gen then samples its next token and sends its events.
 *
 * Prefix reuse: a new request goes to the slot whose cached tokens share the longest
 * prefix with its prompt (nook_session_prefix_match; a busy slot's prefix is copied
 * into a free one), and only the rest is decoded: the next turn of a conversation
 * decodes the new messages only. A finished request's tokens stay cached in its slot
 * until another request needs the slot. A full context is shifted as nook_generate
 * does (keep num_keep, drop half of the rest, decode the kept tail again), per slot.
 *
 * Generation states (nook_gen) are reused across requests: at most n_parallel are kept
 * for the next submits, so a request allocates nothing sized by the vocabulary.
 *
 * Events go to the request's callback on the worker thread (see nook_event_fn: keep it
 * short, it holds up the other sequences); DONE is always the last event, and after it
 * the request's ud is no longer used. */
typedef struct nook_sched nook_sched;

typedef struct nook_sched_params {
    int n_parallel;       /* sequences decoded together (slots)                   [4] */
    int n_ctx;            /* context of EACH sequence (0: min(n_ctx_train, 4096))     */
    int n_batch;          /* tokens per step: prompt chunks + one per generating
                             sequence                                            [512] */
    int n_threads;        /* threads of the process pool a step uses (0: all)        */
    int max_queue;        /* requests waiting for a free slot; more is NOOK_EBUSY [64] */
    nook_kv_type kv_type;
    bool plain_attn;
} nook_sched_params;

nook_sched_params nook_sched_default_params(void);

/* Create the session (all memory up front) and start the worker. The model must
 * outlive the scheduler. Errors as nook_session_new. */
nook_status nook_sched_new(const nook_model *m, const nook_sched_params *p, nook_sched **out,
                           nook_error *err);

/* Stop: every queued and active request ends (DONE, "cancelled"), the worker is
 * joined, memory freed. Not to be called from an event callback. */
void nook_sched_free(nook_sched *s);

/* Queue a request; any thread. The prompt is rendered and tokenized here, in the
 * caller's thread (nook_prompt: messages, text, or tokens only: no text and no
 * messages, the tokens in context), and copied: prompt and params need not outlive the
 * call. *id (may be NULL) names the request for nook_sched_cancel. Errors, returned
 * before any event: NOOK_EBUSY (the queue holds max_queue requests: HTTP 503),
 * NOOK_ERANGE (the prompt is longer than a sequence's context), NOOK_EINVAL (bad
 * prompt or params), NOOK_EUNSUPPORTED (grammar unavailable), NOOK_ENOMEM. */
nook_status nook_sched_submit(nook_sched *s, const nook_prompt *prompt, const nook_gen_params *p,
                              nook_event_fn on_event, void *ud, uint64_t *id, nook_error *err);

/* Cancel a request at once, any thread (a client went away): a queued one never
 * starts, an active one stops at its next step, and a prefill in progress is aborted
 * inside the decode (nook_session_set_abort) when it is the only work in the batch.
 * Its DONE event ("cancelled") follows on the worker thread. Returns false when no
 * request with that id is queued or active (already done). */
bool nook_sched_cancel(nook_sched *s, uint64_t id);

/* A snapshot for /api/ps-like reports and tests. */
typedef struct nook_sched_stats {
    int n_active, n_queued;     /* requests in slots / waiting                   */
    uint64_t n_steps;           /* batches decoded                                */
    uint64_t n_decoded;         /* tokens decoded (prompt and generated)          */
    uint64_t n_reused;          /* prompt tokens taken from the cache instead     */
    uint64_t n_shared_steps;    /* batches that held more than one sequence       */
    uint64_t n_aborted;         /* decodes stopped inside by the abort hook       */
    /* where the worker's time went (monotonic ns): decoding batches; handing each
     * step's logits to its requests (sampling, detokenizing, the event callbacks);
     * waiting for work (no request in a slot or the queue) */
    uint64_t decode_ns, handoff_ns, idle_ns;
} nook_sched_stats;
void nook_sched_stats_get(nook_sched *s, nook_sched_stats *out);

/* ---- Structured output and tool calls (src/grammar) -------------------------------
 * Constrained decoding itself is a generation parameter (grammar: GBNF text; format:
 * "json" or a JSON schema; docs/grammar.md). These are the tool-call pieces a server
 * maps OpenAI/Ollama requests onto. Tools are rendered by the chat template (its
 * `tools` variable). Strings returned are NUL-terminated and owned by the caller
 * (release with nook_free).
 */

/* The tool-call format a chat template asks for: "hermes" (Qwen2.5/Qwen3:
 * <tool_call>{json}</tool_call>), "llama3" ({"name", "parameters"}), "mistral"
 * ([TOOL_CALLS] [...]) or "generic" (a bare JSON call). Never NULL; NULL template:
 * "generic". */
const char *nook_tool_family(const char *chat_template);

/* Splits a finished answer into content and tool calls in the template's format
 * (falling back to a bare JSON call, or one in a ```json fence). *calls_json is NULL
 * when there are none, else a JSON array in OpenAI's shape with arguments as an
 * object (Ollama's; OpenAI clients want json_dumps of it as a string):
 *   [{"id":"call_1a2b3c4d","type":"function","function":{"name":..,"arguments":{..}}}]
 * ids are derived from the call, so they are stable for the same text. *content is
 * the text outside the calls. Errors: NOOK_EINVAL, NOOK_ENOMEM. */
nook_status nook_tool_parse(const char *chat_template, const char *text, size_t len,
                            char **content, char **calls_json, nook_error *err);

/* GBNF that forces exactly one call in the template's format to one of tools_json (a
 * JSON array of OpenAI tool objects, {"type":"function","function":{"name",
 * "parameters"}}, or of bare function objects), its arguments valid against the
 * tool's parameters schema. tool_choice: "required" (any of the tools) or a function
 * name (OpenAI's {"type":"function","function":{"name":...}}). Pass it as the
 * generation's grammar. Errors: NOOK_EINVAL (bad tools), NOOK_ENOTFOUND (a name not
 * among the tools), NOOK_EUNSUPPORTED (a parameters schema the converter refuses). */
nook_status nook_tool_grammar(const char *chat_template, const char *tools_json,
                              const char *tool_choice, char **gbnf, nook_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NOOK_H */
