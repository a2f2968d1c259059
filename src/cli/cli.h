/*
 * cli.h: what the verbs of the `nook` command share: option tables, error reporting,
 * number parsing, the log sink, input reading and tokenization helpers.
 *
 * Exit codes (docs/cli.md): 0 success, 1 a runtime failure (file, model, context),
 * 2 a usage error (unknown verb or option, bad option value, missing argument).
 * Every failure prints exactly one line "nook: <message>" on stderr.
 */
#ifndef NOOK_CLI_H
#define NOOK_CLI_H

#include "base/base.h"

#include <stdio.h>

#ifndef NOOK_VERSION
#define NOOK_VERSION "0.1.0-dev"
#endif

enum { CLI_OK = 0, CLI_EFAIL = 1, CLI_EUSAGE = 2 };

/* ---- options ----------------------------------------------------------------------
 * Each verb describes its options in a table; cli_parse fills the destinations and
 * collects positional arguments. Options may appear anywhere ("--" ends them) and
 * take their value as the next argument or after '=' (--top-k=5). */
typedef enum {
    OPT_FLAG,    /* bool *dst = true                                    */
    OPT_SET,     /* int *dst = (int)min (e.g. --think / --no-think)     */
    OPT_INT,     /* int *dst, within [min, max]                         */
    OPT_I64,     /* int64_t *dst, within [min, max]                     */
    OPT_FLOAT,   /* float *dst, finite, within [min, max]               */
    OPT_STR,     /* const char **dst (borrowed from argv)               */
} cli_opt_kind;

typedef struct cli_opt {
    const char *name;      /* long name without "--" */
    char short_name;       /* 0: none */
    cli_opt_kind kind;
    void *dst;
    double min, max;
    const char *metavar;   /* for usage: "N", "X", ... (NULL for flags) */
    const char *help;
} cli_opt;

typedef struct cli_verb_info {
    const char *name;      /* "run" */
    const char *args;      /* "MODEL [PROMPT...]" */
    const char *summary;   /* one line */
    const cli_opt *opts;
    int n_opts;
} cli_verb_info;

/* Parses argv[1..argc) (argv[0] is the verb). On success returns CLI_OK with the
 * positional arguments moved, in order, to argv[0..*n_pos). Prints the
 * verb's usage and returns -1 for --help/-h; prints "nook: ..." and returns
 * CLI_EUSAGE for an unknown option or a bad value. */
int cli_parse(const cli_verb_info *v, int argc, char **argv, int *n_pos);
void cli_usage(const cli_verb_info *v, FILE *out);

/* ---- errors and logging ------------------------------------------------------------- */

/* Prints "nook: <message>\n" on stderr and returns code. The message is one line:
 * newlines in it are printed as spaces. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* --kv-cache-type NAME ("f16", "q8_0", "q4_0", "f32") into *out; CLI_EUSAGE (reported) otherwise. */
int cli_kv_type(const char *verb, const char *name, nook_kv_type *out);
/* The log sink: warnings and errors always, info/debug only when verbose. */
void cli_install_log(bool verbose);

/* ---- input -------------------------------------------------------------------------- */

/* Reads f to EOF (or to the first newline when one_line, without the newline) into
 * a NUL-terminated nk_malloc'd buffer. NULL on out-of-memory or a read error. */
char *cli_read_stream(FILE *f, bool one_line, size_t *len);
/* argv[from..n) joined with single spaces into a NUL-terminated nk_malloc'd buffer
 * (*len excludes the NUL); NULL on out-of-memory. */
char *cli_join_args(char **argv, int from, int n, size_t *len);

/* ---- models and tokens ---------------------------------------------------------------- */

/* Loads the model at path, or prints the error and returns NULL. */
nook_model *cli_load_model(const char *path, int n_threads, bool no_mmap);
/* The same; vocab_only loads just the tokenizer (tokenize/detokenize work on
 * vocab-only GGUFs of any architecture). */
nook_model *cli_load_model_ex(const char *path, int n_threads, bool no_mmap, bool vocab_only);

/* Tokenizes text into a fresh nk_malloc'd array (*out, *n). On failure prints the
 * error and returns CLI_EFAIL. */
int cli_tokenize(const nook_model *m, const char *text, size_t len, bool add_special,
                 bool parse_special, nook_token **out, size_t *n);

/* Tokenizes a prompt for generation: the vocabulary's BOS in front when it asks for
 * one (and the text did not already produce it, e.g. a template that writes <s>),
 * never a trailing EOS. */
int cli_prompt_tokens(const nook_model *m, const char *text, size_t len, bool parse_special,
                      nook_token **out, size_t *n);

/* Whether the tokenizer puts a space in front of the text (SentencePiece's
 * add_space_prefix): then detokenizing the tokens of "a" gives " a". */
bool cli_adds_space_prefix(const nook_model *m);

/* Warnings (cli_hints.c), one stderr line each: --threads above the cores, --ctx above the
 * model's trained context. */
void cli_warn_threads(int threads);
void cli_warn_ctx(const nook_model *m, int ctx);
/* Whether two descriptors are the same open file (stdout and stderr into one pipe). */
bool cli_same_file(int fd_a, int fd_b);
/* A model file could not be opened: when path does not exist, a message that says what
 * nook accepts instead (a .gguf path or a model name); otherwise msg. Returns CLI_EFAIL. */
int cli_fail_open(const char *path, const char *msg);

/* ---- formatting ----------------------------------------------------------------------- */

/* A duration the way Go prints time.Duration (Ollama's --verbose): "1.234567s",
 * "12.5ms", "830µs", "2m3.5s". */
void cli_fmt_duration(char *buf, size_t cap, double ms);

/* Ollama's --verbose summary of one answer (total, load, prompt eval and eval counts,
 * durations and rates) on stderr: the in-process run, the interactive session and the
 * run through a server print it from here. */
void cli_print_timings(const nook_timings *t);
/* The timings of an Ollama final object (done:true; absent fields are 0). */
struct json_t;
nook_timings cli_timings_json(const struct json_t *o);

/* ---- the answer printer of `nook run` (cli_util.c) ---------------------------------------
 * One printer for the in-process run and the run through a server: reasoning goes to
 * stderr between Ollama's CLI lines "Thinking...\n" and "\n...done thinking.\n\n"
 * (nothing when hide), the answer to stdout, flushed per piece. failed: a write to
 * stdout failed; ends_newline: the last answer byte was a newline. */
typedef struct cli_answer_out {
    bool hide, opened, closed, failed, ends_newline;
} cli_answer_out;
void cli_out_thinking(cli_answer_out *o, const char *p, size_t n);
void cli_out_content(cli_answer_out *o, const char *p, size_t n);
/* Closes an open thinking block (no-op otherwise). */
void cli_out_think_close(cli_answer_out *o);

/* ---- the interactive session (cli_chat.c) -------------------------------------------------- */

/* What `nook run MODEL` on a terminal starts the conversation with: the run options
 * already turned into library parameters. */
typedef struct cli_chat_cfg {
    const char *model;           /* the GGUF path (a store name already resolved) */
    const char *name;            /* what the user named it (store name or path): /save's FROM */
    const struct json_t *params; /* the model's PARAMETERs (Modelfile), or NULL   */
    const struct json_t *messages; /* its MESSAGEs [{role, content}], or NULL: the
                                    conversation starts with them                 */
    const char *system;          /* the model's SYSTEM (Modelfile), or NULL       */
    const char *template_src;    /* the model's TEMPLATE as Jinja, or NULL        */
    nook_gen_params gp;
    nook_session_params sp;
    int  think;                  /* -1 template default, 0 off, 1 on             */
    int  threads;
    bool verbose, no_mmap;
    /* A running server (cli_client.c) to talk to instead of loading the model here:
     * then model is MODEL as given (the server resolves it), each turn is a streamed
     * /api/chat with the conversation so far, and options (Ollama's, the ones the
     * command line set; borrowed) go with every turn, with those /set adds. */
    const struct cli_server *server;
    struct json_t *options;
} cli_chat_cfg;
/* Runs the conversation until /bye or Ctrl-D; returns an exit code. */
int cli_chat(const cli_chat_cfg *cfg);

/* ---- verbs ------------------------------------------------------------------------------ */
int cli_run(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_tokenize_cmd(int argc, char **argv);
int cli_detokenize_cmd(int argc, char **argv);
int cli_quantize_cmd(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_embed(int argc, char **argv);
int cli_import_tokenizer_cmd(int argc, char **argv);
int cli_specialize(int argc, char **argv);   /* cli_specialize.c */
int cli_classify(int argc, char **argv);     /* cli_classify.c */
/* `nook show` of a specialist (a stored name or a file): prints what it is and returns
 * CLI_OK; -1 when ref is not a specialist (show goes on as for a model). */
int cli_show_specialist(const char *ref);
/* cli_presets.c: the writing tasks (store presets nook/summarize, nook/tighten, nook/name;
 * the specialist nook/split) */
int cli_summarize(int argc, char **argv);
int cli_tighten(int argc, char **argv);
int cli_name(int argc, char **argv);
int cli_split(int argc, char **argv);
int cli_audit(int argc, char **argv);          /* cli_audit.c (router) */
int cli_route(int argc, char **argv);          /* cli_route.c (router) */
int cli_route_eval(int argc, char **argv);     /* cli_route_eval.c (router): `route eval` */
int cli_serve(int argc, char **argv);

/* ---- a running server (cli_client.c): the CLI as its client, as Ollama's ---------------- */
typedef struct cli_server cli_server;
struct cli_server {
    char base[320];     /* "http://127.0.0.1:11434" */
    bool remote;        /* NOOK_HOST is not a loopback literal: another machine */
};
/* The server NOOK_HOST (else 127.0.0.1:11434) names; CLI_EUSAGE with
 * a message for a malformed value. */
int cli_server_find(cli_server *s);
/* Whether it answers GET / ("... is running"); a quick probe on loopback. */
bool cli_server_up(const cli_server *s);
typedef struct cli_client_req {
    const char *model, *prompt;
    bool raw, hide_thinking, verbose;
    int think;                         /* -1 the template's default, 0 off, 1 on */
    struct json_t *format;             /* "json", a schema, or NULL (borrowed) */
    struct json_t *options;            /* Ollama's options object, or NULL (borrowed) */
} cli_client_req;
/* POST /api/generate, streamed: the answer to stdout, thinking to stderr (as nook run). */
int cli_client_generate(const cli_server *s, const cli_client_req *q);
/* One streamed request to a server on this machine (NDJSON, e.g. /api/chat): every
 * line's object goes to fn (false stops the transfer), as it arrives. cancel (may be
 * NULL) aborts it when nonzero (the connection is closed: the server cancels the
 * generation). Returns 0 (the done:true line came), 1 (cancelled or stopped by fn) or
 * -1 with msg (transport error, an HTTP error's text, an error line, a cut stream). */
typedef bool (*cli_obj_fn)(const struct json_t *o, void *ud);
int cli_client_stream(const cli_server *s, const char *path, const struct json_t *body, cli_obj_fn fn, void *ud,
                      const volatile int *cancel, char *msg, size_t cap);
/* MODEL as the server should read it (a local file as its absolute path). */
void cli_client_model(const cli_server *s, const char *model, char *out, size_t cap);
/* POST path with a JSON body, the whole answer: its JSON (owned by the caller), or NULL
 * with msg (transport error, the server's error text). */
struct json_t *cli_client_post(const cli_server *s, const char *path, const struct json_t *body, long timeout_ms,
                               char *msg, size_t cap);
int cli_ps(int argc, char **argv);
int cli_stop(int argc, char **argv);

#endif /* NOOK_CLI_H */
