/*
 * store.h: nook's model store. Names, manifests and blobs in Ollama's on-disk layout,
 * pulls from Ollama registries and Hugging Face, Modelfiles and create. docs/store.md
 * explains the design; this header is the contract the CLI and the server use.
 *
 * Layout (identical to Ollama's, so either program can read the other's store):
 *   <root>/manifests/<host>/<namespace>/<model>/<tag>   JSON manifest (Docker v2 schema)
 *   <root>/blobs/sha256-<64 hex>                        content-addressed, immutable
 *   <root>/blobs/sha256-<hex>-partial[.parts]           a download in progress (resumable)
 * The root is $NOOK_MODELS, else $NOOK_HOME/models, else ~/.nook/models. With
 * NOOK_OLLAMA_STORE=1 (the CLI's --ollama-store) the root is Ollama's own store
 * ($OLLAMA_MODELS, else ~/.ollama/models), used in place: nothing is copied.
 *
 * Safety rules (docs/store.md "Security"): every name part and digest is checked
 * against a strict pattern before it becomes a path component, so no input can name
 * a file outside the root; manifests (4 MiB) and config/text layers (4 MiB) are capped;
 * a blob becomes visible under its final name only after its SHA-256 matched (temp
 * file, fsync, rename); a model's GGUF is fully parsed and every tensor checked inside
 * the file before any manifest naming it is written.
 *
 * Threads: an nk_store is immutable after open and may be shared by threads; the
 * functions below may run at once from several threads and processes (file locks
 * serialize downloads of one blob and garbage collection).
 */
#ifndef NOOK_STORE_H
#define NOOK_STORE_H

#include "base/base.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- names (Ollama's rules, types/model/name.go) ---------------------------------- */

#define NK_DEFAULT_HOST "registry.ollama.ai"
#define NK_DEFAULT_NS   "library"
#define NK_DEFAULT_TAG  "latest"

typedef struct nk_name {
    char scheme[8];        /* "" (https unless --insecure), "http" or "https" when written */
    char host[351];        /* [A-Za-z0-9_][A-Za-z0-9-_.:]*, <= 350 */
    char ns[81];           /* [A-Za-z0-9_][A-Za-z0-9-_]*, <= 80 (HF: the user) */
    char model[81];        /* [A-Za-z0-9_][A-Za-z0-9-_.]*, <= 80 */
    char tag[81];          /* as model */
    char digest[72];       /* "sha256:<hex>" after '@', or "" */
} nk_name;

/* Parses "qwen3", "qwen3:8b", "user/model:tag", "host[:port]/ns/model:tag",
 * "hf.co/user/repo:Q4_K_M", "...@sha256:<hex>", filling defaults (host
 * registry.ollama.ai, namespace library, tag latest). Errors: NOOK_EINVAL naming the
 * part that breaks the pattern. Case is kept (matching is case-insensitive). */
nook_status nk_name_parse(const char *s, nk_name *out, nook_error *err);
/* The short display form Ollama prints: "qwen3:8b" for library models, "user/m:tag",
 * "host/ns/m:tag" otherwise. */
void nk_name_display(const nk_name *n, char *buf, size_t cap);
bool nk_name_is_hf(const nk_name *n);   /* hf.co or huggingface.co */
/* "sha256:" + 64 lowercase hex digits, exactly. */
bool nk_digest_valid(const char *d);

/* ---- manifests ------------------------------------------------------------------------ */

#define NK_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define NK_MT_CONFIG   "application/vnd.docker.container.image.v1+json"
#define NK_MT_MODEL    "application/vnd.ollama.image.model"
#define NK_MT_TEMPLATE "application/vnd.ollama.image.template"
#define NK_MT_SYSTEM   "application/vnd.ollama.image.system"
#define NK_MT_PARAMS   "application/vnd.ollama.image.params"
#define NK_MT_MESSAGES "application/vnd.ollama.image.messages"
#define NK_MT_LICENSE  "application/vnd.ollama.image.license"
#define NK_MT_ADAPTER  "application/vnd.ollama.image.adapter"
#define NK_MT_PROJECTOR "application/vnd.ollama.image.projector"
#define NK_MT_SPECIALIST "application/vnd.nook.specialist"   /* a classifier (src/specialist) */

#define NK_MANIFEST_MAX (4u << 20)    /* bytes of a manifest */
#define NK_TEXT_LAYER_MAX (4u << 20)  /* config, template, system, params, messages, license */
#define NK_MAX_LAYERS 256

typedef struct nk_layer {
    char media_type[128];
    char digest[72];
    uint64_t size;
} nk_layer;

typedef struct nk_manifest {
    nk_layer config;
    nk_layer *layers;
    int n_layers;
} nk_manifest;

/* Parses and validates a manifest (schemaVersion 2, digests valid, sizes within caps
 * for text layers, at most NK_MAX_LAYERS). Errors: NOOK_EFORMAT naming the field. */
nook_status nk_manifest_parse(const char *json, size_t len, nk_manifest *out, nook_error *err);
void nk_manifest_free(nk_manifest *m);
/* Serializes to the canonical JSON Ollama writes (nk_malloc'd, NUL-terminated). */
char *nk_manifest_json(const nk_manifest *m);
const nk_layer *nk_manifest_find(const nk_manifest *m, const char *media_type);

/* ---- the store ------------------------------------------------------------------------- */

typedef struct nk_store nk_store;

/* Opens the store at root (NULL: the default described above), creating
 * manifests/ and blobs/ when missing. Errors: NOOK_EIO. */
nook_status nk_store_open(const char *root, nk_store **out, nook_error *err);
void nk_store_free(nk_store *s);
const char *nk_store_root(const nk_store *s);
/* The default root ($NOOK_MODELS, $NOOK_HOME/models, ~/.nook/models, or Ollama's with
 * NOOK_OLLAMA_STORE=1) into buf. */
void nk_store_default_root(char *buf, size_t cap);

/* Path of a blob: <root>/blobs/sha256-<hex>. The digest must be valid. */
void nk_store_blob_path(const nk_store *s, const char *digest, char *buf, size_t cap);
bool nk_store_has_blob(const nk_store *s, const char *digest, uint64_t *size);

/* Reads the manifest of name (matching case-insensitively, as Ollama). *path_out (may be
 * NULL) receives the manifest's path. Errors: NOOK_ENOTFOUND "model 'x' not found",
 * NOOK_EFORMAT for a corrupt manifest. */
nook_status nk_store_read_manifest(const nk_store *s, const nk_name *n, nk_manifest *out,
                                   char *path_out, size_t cap, nook_error *err);
/* Writes the manifest of name atomically after checking that every blob it names is
 * present with the declared size. Replaces an existing manifest of the same name
 * (case-insensitively: the existing file keeps its spelling). */
nook_status nk_store_write_manifest(nk_store *s, const nk_name *n, const nk_manifest *m,
                                    nook_error *err);

/* Adds a file's bytes as a blob (copied through a temp file, hashed while copying,
 * fsync'd, renamed). *digest receives "sha256:<hex>". If expect is non-NULL the
 * digest must equal it (NOOK_EFORMAT otherwise, nothing kept). */
nook_status nk_store_add_blob_file(nk_store *s, const char *src, const char *expect,
                                   char digest[72], uint64_t *size, nook_error *err);
/* The same, reporting bytes copied (done of total) after each MiB and at the start;
 * progress returning false stops it with NOOK_EABORTED, leaving no partial file. */
typedef bool (*nk_bytes_progress_fn)(uint64_t done, uint64_t total, void *ud);
nook_status nk_store_add_blob_file_ex(nk_store *s, const char *src, const char *expect, char digest[72],
                                      uint64_t *size, nk_bytes_progress_fn progress, void *ud, nook_error *err);
nook_status nk_store_add_blob_buf(nk_store *s, const void *data, size_t len,
                                  char digest[72], nook_error *err);
/* Adds a blob from a stream (read_fn returns bytes read, 0 at the end, -1 on error);
 * the digest must equal expect (a client's POST /api/blobs/:digest). */
typedef long (*nk_read_fn)(void *ud, void *buf, size_t cap);
nook_status nk_store_add_blob_stream(nk_store *s, nk_read_fn rd, void *ud, const char *expect,
                                     uint64_t max_size, nook_error *err);

/* Checks that the GGUF at path is fully parsed and every tensor lies inside the file
 * (gguf_parse's validation). Errors: NOOK_EFORMAT / NOOK_EUNSUPPORTED naming why. */
nook_status nk_store_validate_gguf(const char *path, nook_error *err);

/* One listed model. */
typedef struct nk_store_entry {
    char name[512];        /* display form (nk_name_display) */
    nk_name n;
    char digest[72];       /* sha256 of the manifest file ("ID" = its first 12 hex) */
    uint64_t size;         /* config + layers */
    int64_t modified;      /* manifest mtime, seconds since the epoch */
    char model_digest[72]; /* the model layer's digest, "" if none */
} nk_store_entry;

/* All models, sorted by modification time (newest first). Unreadable manifests are
 * skipped (logged). *out is nk_malloc'd. */
nook_status nk_store_list(const nk_store *s, nk_store_entry **out, int *n, nook_error *err);

/* Removes the manifest of name, then the blobs no manifest references any more
 * (unless a pull or create holds the store lock; then they stay until the next rm).
 * Errors: NOOK_ENOTFOUND. */
nook_status nk_store_remove(nk_store *s, const nk_name *n, nook_error *err);
/* Copies a manifest to another name (no blob is copied). */
nook_status nk_store_copy(nk_store *s, const nk_name *from, const nk_name *to, nook_error *err);
/* Deletes unreferenced blobs and stale partial files; returns how many were removed. */
int nk_store_gc(nk_store *s, nook_error *err);

/* Store lock: pulls and creates hold it shared while they add blobs and write a
 * manifest; gc takes it exclusive without waiting. Returns an fd (or -1). */
int nk_store_lock_shared(nk_store *s);
void nk_store_unlock(int fd);

/* ---- resolving a model for running (the CLI's run and the server's requests) --------- */

typedef struct nk_model_ref {
    char path[4096];       /* the GGUF to load */
    char name[512];        /* display name ("qwen3:8b"), or the path given */
    bool from_store;
    char digest[72];       /* manifest digest, "" for a path */
    char *system;          /* SYSTEM, or NULL (nk_malloc'd) */
    char *template_go;     /* TEMPLATE as stored (Ollama Go template), or NULL */
    char *template_jinja;  /* its translation to Jinja, NULL if none or untranslatable
                              (then the GGUF's own chat template applies) */
    char *license;         /* LICENSE texts joined, or NULL */
    json_t *params;        /* PARAMETER object ({"temperature":0.2,"stop":[...]}), or NULL */
    json_t *messages;      /* MESSAGE list [{"role","content"}], or NULL */
    char *template_note;   /* why template_go was not translated, or NULL */
} nk_model_ref;

/* Resolves what a user typed: a string naming an existing regular file is a path
 * (loaded as is, no settings); otherwise a model name looked up in the store. The
 * settings come from the manifest's template/system/params/messages/license layers.
 * Errors: NOOK_ENOTFOUND "model 'x' not found" (the caller may pull it), NOOK_EINVAL
 * for a string that is neither a file nor a valid name, NOOK_EUNSUPPORTED for
 * adapters/projectors, NOOK_EFORMAT for corrupt layers. */
nook_status nk_model_resolve(const nk_store *s, const char *what, nk_model_ref *out, nook_error *err);
void nk_model_ref_free(nk_model_ref *r);

/* ---- Go templates (Modelfile TEMPLATE) ------------------------------------------------ */

/* Translates the common Ollama Go-template cases into a Jinja chat template:
 * {{ .System }}, {{ .Prompt }}, {{ .Response }}, {{ if .System }}..{{ end }},
 * {{ range .Messages }} with .Role/.Content, {{ if eq .Role "user" }}, else/else if,
 * {{- -}} trimming, $.System. Anything else is refused with a message naming the
 * construct (NOOK_EUNSUPPORTED). *out is nk_malloc'd. */
nook_status nk_gotmpl_to_jinja(const char *go, char **out, nook_error *err);

/* ---- pull ------------------------------------------------------------------------------ */

typedef struct nk_pull_progress {
    const char *status;    /* "pulling manifest", "pulling <digest 12>", "verifying sha256 digest",
                              "writing manifest", "success" */
    const char *digest;    /* the layer ("sha256:..."), or NULL */
    uint64_t total;        /* bytes of the layer, 0 when not a transfer */
    uint64_t completed;
} nk_pull_progress;
/* Return false to cancel the pull. Called from the pulling thread only (never from
 * two threads at once), at most every ~100 ms per layer plus each status change. */
typedef bool (*nk_pull_progress_fn)(const nk_pull_progress *p, void *ud);

typedef struct nk_pull_opts {
    bool insecure;         /* allow plain http (Ollama's --insecure) */
    int parts;             /* parallel ranged parts per large blob (0: NOOK_PULL_PARTS or 8) */
    uint64_t min_part;     /* bytes per part at least (0: 16 MiB; tests set small) */
    const char *mirror;    /* base URL replacing https://registry.ollama.ai (NULL: NOOK_REGISTRY_MIRROR) */
    long stall_ms;         /* 0: 30 s (NOOK_PULL_STALL_MS) */
    int retries;           /* per part (0: 6) */
    nk_pull_progress_fn progress;
    void *ud;
    const volatile int *cancel;
} nk_pull_opts;

/* Pulls name into the store: manifest (with the registry's token handshake), every
 * missing blob (ranged parts in parallel, resumable, SHA-256 verified), GGUF validation,
 * then the manifest. hf.co/<user>/<repo>[:QUANT] pulls from Hugging Face's own registry
 * endpoint when it speaks /v2 (as hf.co does for Ollama), else picks the repo's GGUF for
 * QUANT through its file API. Errors name the URL's host and what went wrong. */
nook_status nk_pull(nk_store *s, const char *name, const nk_pull_opts *o, nook_error *err);

/* Pushes name from the store to its registry (Ollama's protocol: HEAD each blob, upload
 * the missing ones with POST .../blobs/uploads/ then PUT <Location>?digest=, then PUT the
 * manifest byte for byte as stored). Off unless NOOK_ALLOW_PUSH=1 (NOOK_EUNSUPPORTED
 * saying so): a push sends the model's files, settings included, off the machine, and is
 * recorded in the egress ledger as carrying user content. o: insecure, stall_ms,
 * progress ("retrieving manifest", "pushing <digest 12>" with bytes, "pushing manifest",
 * "success"), cancel; the other fields are unused. Errors name the registry and status. */
nook_status nk_push(nk_store *s, const char *name, const nk_pull_opts *o, nook_error *err);

/* ---- Modelfile and create -------------------------------------------------------------- */

typedef struct nk_modelfile {
    char *from;            /* FROM value (name, .gguf path, or directory) */
    char *tmpl;            /* TEMPLATE or NULL */
    char *system;
    char *license;         /* LICENSE blocks joined by "\n\n" */
    char *requires;
    json_t *params;        /* object; "stop" is an array */
    json_t *messages;      /* array of {role, content} */
    char *adapter;         /* ADAPTER (refused by create) */
} nk_modelfile;

/* Parses a Modelfile (Ollama's syntax: case-insensitive instructions, # comments,
 * """ multi-line values, quoted values). Unknown instructions and bad PARAMETER values
 * are NOOK_EFORMAT with the line number. */
nook_status nk_modelfile_parse(const char *text, size_t len, nk_modelfile *out, nook_error *err);
void nk_modelfile_free(nk_modelfile *mf);
/* The Modelfile `show --modelfile` prints for a resolved model (nk_malloc'd). */
char *nk_modelfile_render(const nk_model_ref *r);

typedef struct nk_create_opts {
    const char *base_dir;  /* relative FROM paths start here (the Modelfile's folder) */
    const char *quantize;  /* "q4_K_M", "q8_0", ... or NULL */
    int n_threads;
    nk_pull_progress_fn progress;   /* status lines ("parsing modelfile", ...) and, while
                                       quantizing or copying the model in, byte counts
                                       (total and completed); false cancels (NOOK_EABORTED,
                                       nothing left behind) */
    void *ud;
} nk_create_opts;

/* Creates name from a parsed Modelfile: FROM a store name (its layers are reused), a
 * GGUF file (copied in as a blob, validated), or a directory holding one GGUF; an
 * optional quantization through nk_quantize_file; TEMPLATE checked by
 * nk_gotmpl_to_jinja; the other settings as Ollama's layers. ADAPTER is refused. */
nook_status nk_create(nk_store *s, const char *name, const nk_modelfile *mf,
                      const nk_create_opts *o, nook_error *err);

#endif /* NOOK_STORE_H */
