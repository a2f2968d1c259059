/*
 * models.h: model residency for the server (Ollama's scheduler's job): which models are
 * loaded, one load shared by concurrent requests, keep_alive and idle eviction within
 * NOOK_MAX_LOADED_MODELS, and where a request's generation runs.
 *
 * A model is keyed by its file (realpath) and its context length: a request for a
 * model being loaded waits for that load. Generation goes to the engine: today
 * nook_generate on one of the model's sessions (NOOK_NUM_PARALLEL of them, default 1;
 * requests beyond that wait, up to NOOK_MAX_QUEUE, then 503). When the engine's
 * batching scheduler (nook_sched) is on main, srv_model_generate submits to it instead;
 * its callers do not change.
 */
#ifndef NOOK_SERVER_MODELS_H
#define NOOK_SERVER_MODELS_H

#include "server/server.h"

typedef struct srv_model srv_model;

/* Finds the model `name` (a GGUF path, absolute or relative to the working directory;
 * store names once the store resolves them) with context num_ctx (0: the server's
 * NOOK_CONTEXT_LENGTH, else min(trained, 4096)), loading it if needed; *waited_ns is the
 * time spent loading or waiting for the load. Returns 0 with a reference in *out, or an
 * HTTP status with msg: 404 (no such model), 400 (a file nook cannot load), 503 (too
 * many models loaded and all busy), 500. */
int srv_models_acquire(srv_server *s, const char *name, int num_ctx, srv_model **out, int64_t *waited_ns,
                       char *msg, size_t cap);
/* Drops a reference. keep_alive_ns (when has_keep_alive; else NOOK_KEEP_ALIVE): < 0 keep
 * forever, 0 unload as soon as idle, > 0 unload after that long idle. */
void srv_models_release(srv_server *s, srv_model *m, bool has_keep_alive, int64_t keep_alive_ns);
/* Unloads every idle entry of `name` now (keep_alive 0 with no prompt); true if one was
 * loaded. Busy entries unload when their last request ends. */
bool srv_models_unload(srv_server *s, const char *name);

const nook_model *srv_model_model(const srv_model *m);
const char *srv_model_path(const srv_model *m);
int srv_model_n_ctx(const srv_model *m);

/* Runs one generation to its DONE event on this thread (blocking; events go to fn on
 * this thread). Waits for a free sequence: NOOK_EBUSY when NOOK_MAX_QUEUE requests
 * are already waiting. Errors before any event as nook_generate's. */
nook_status srv_model_generate(srv_model *m, const nook_prompt *prompt, const nook_gen_params *p,
                               nook_event_fn fn, void *ud, nook_error *err);
/* The same, with a flag the decode watches (nook_session_set_abort): set from any thread,
 * it stops even a long prompt evaluation within milliseconds. gone (may be NULL) is
 * asked every 20 ms while waiting, on this thread (a client that left: the caller
 * runs this on the connection's thread); true cancels as the flag does. */
nook_status srv_model_generate_abortable(srv_model *m, const nook_prompt *prompt, const nook_gen_params *p,
                                         nook_event_fn fn, void *ud, const _Atomic bool *abort_flag,
                                         bool (*gone)(void *), void *gone_ud, nook_error *err);

/* Embeddings of n texts (Ollama's /api/embed): each tokenized (BOS/EOS as the
 * vocabulary adds them), decoded on the model's embedding session (created on first
 * use, one request at a time), pooled as the model says (mean when it does not). A
 * text longer than the context is cut to it when truncate, else refused (400).
 * *out receives n * (*n_embd) floats, raw (not normalized; nk_free), *n_tokens the
 * tokens decoded. Returns 0 or an HTTP status with msg. */
int srv_model_embed(srv_model *m, char *const *texts, int n, bool truncate, float **out, int *n_embd,
                    int *n_tokens, char *msg, size_t cap);

/* The loaded models' scheduler counters (nook_sched_stats: steps, tokens decoded, and
 * the seconds spent decoding, handing logits to requests, and idle) as Prometheus
 * text, one series per model (labels model and num_ctx), for GET /metrics. A new
 * string (nk_free) of *len bytes, NULL when out of memory. Any thread. */
char *srv_models_metrics_text(srv_server *s, size_t *len);

/* A snapshot of the loaded models for /api/ps and /api/tags (a JSON array of
 * Ollama's ps objects; names as first requested). */
json_t *srv_models_list(srv_server *s, bool ps_shape);

/* What a GGUF says for Ollama's /api/show (routes_models.c; the store's /api/show uses it
 * for every model): a new object with "details" (format, family, families,
 * parameter_size, quantization_level from general.file_type), "model_info"
 * (general.*, <arch>.context_length / embedding_length / block_count, vocabulary
 * size), "capabilities" (completion; thinking and tools when the chat template, or
 * template_override, has them) and "template" (the GGUF's chat template). NULL with msg
 * when the file cannot be loaded. */
json_t *srv_model_show(const char *path, const char *template_override, char *msg, size_t cap);

#endif
