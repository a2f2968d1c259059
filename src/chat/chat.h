/*
 * chat.h: chat templates. Renders a model's own `tokenizer.chat_template` (Jinja) the way
 * Hugging Face's apply_chat_template does (jinja2 with trim_blocks, lstrip_blocks, the
 * loopcontrols extension, HF's `tojson`, `raise_exception` and `strftime_now`), byte for
 * byte, with a small interpreter for the subset of Jinja real templates use. Files without
 * a template (or with one outside the subset) fall back to built-in formats by family.
 *
 * Messages, tools and extra variables are jansson values (the OpenAI chat shape: a list of
 * {"role", "content", "tool_calls"?, ...} objects). See docs/chat-templates.md.
 *
 * Threads: every function here is reentrant; a compiled template is immutable and may be
 * rendered from several threads at once.
 */
#ifndef NK_CHAT_H
#define NK_CHAT_H

#include "base/base.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits that keep a hostile template from crashing or hanging the process.
 * A zero field means "use the default" (NK_CHAT_DEFAULT_*). */
typedef struct nk_chat_limits {
    size_t   max_output;     /* bytes of rendered text */
    size_t   max_memory;     /* bytes of interpreter memory for one render (or compile) */
    uint64_t max_steps;      /* evaluated nodes + loop iterations */
    int      max_depth;      /* nesting of evaluation (expressions, blocks, macro calls) */
    int      max_macro_depth;/* macro calls on the stack */
} nk_chat_limits;

#define NK_CHAT_DEFAULT_MAX_OUTPUT   (16u << 20)
#define NK_CHAT_DEFAULT_MAX_MEMORY   (256u << 20)
#define NK_CHAT_DEFAULT_MAX_STEPS    20000000u
#define NK_CHAT_DEFAULT_MAX_DEPTH    400
#define NK_CHAT_DEFAULT_MAX_MACRO    64

/* A broken-down local time for strftime_now(). set=false means "read the clock". */
typedef struct nk_chat_time {
    bool set;
    int year, month, day;    /* 1-based month and day */
    int hour, minute, second;
} nk_chat_time;

typedef struct nk_chat_options {
    nk_chat_limits limits;
    nk_chat_time   now;
} nk_chat_options;

/* A parsed template. */
typedef struct nk_chat_template nk_chat_template;

/* Parse template_src (len bytes, need not be NUL-terminated). opts may be NULL.
 * Errors: NOOK_EFORMAT (syntax error, with line), NOOK_EUNSUPPORTED ("unsupported construct
 * 'X' at line L": valid Jinja outside the subset), NOOK_ERANGE (limits), NOOK_ENOMEM.
 * The caller owns *out and frees it with nk_chat_template_free. */
nook_status nk_chat_compile(const char *template_src, size_t len, const nk_chat_options *opts,
                            nk_chat_template **out, nook_error *err);
void nk_chat_template_free(nk_chat_template *t);

/* Render: the template sees `messages` (required, a JSON array), `tools` (NULL -> none, as HF
 * passes tools=None), `documents` (none unless kwargs has it), `add_generation_prompt`
 * (false unless kwargs sets it) and every key of kwargs (an object or NULL): bos_token,
 * eos_token, enable_thinking, ... *out is a NUL-terminated nk_malloc'd string the caller frees
 * with nk_free; *out_len (may be NULL) its length.
 * Errors: NOOK_EINVAL (the template raised -- raise_exception's message -- or hit a runtime error
 * jinja2 also raises, such as adding a string to None), NOOK_EUNSUPPORTED (a construct outside
 * the subset met at run time, named), NOOK_ERANGE (a limit), NOOK_ENOMEM. */
nook_status nk_chat_render_compiled(const nk_chat_template *t, const json_t *messages,
                                    const json_t *tools, const json_t *kwargs,
                                    const nk_chat_options *opts, char **out, size_t *out_len,
                                    nook_error *err);

/* Compile + render in one call, with default limits and the current local time. */
nook_status nk_chat_render(const char *template_src, const json_t *messages, const json_t *tools,
                           const json_t *kwargs, char **out, nook_error *err);

/* ---- built-in formats --------------------------------------------------------------------
 * Templates for files that carry none, one per family llama.cpp knows by name:
 * "chatml", "llama3", "gemma", "phi3", "mistral" (v3: "[INST] sys\n\nuser[/INST]"), "llama2".
 * Returns a static Jinja string (rendered by this same interpreter) or NULL if unknown. */
const char *nk_chat_builtin(const char *family);

/* The family a template text belongs to, by the substrings llama.cpp looks for
 * (llamacpp-notes §6): "chatml", "mistral", "llama2", "phi3", "gemma", "llama3", or NULL. */
const char *nk_chat_detect_family(const char *template_src);

/* Render template_src; when it is NULL/empty, or the interpreter cannot handle it (it fails to
 * compile, or meets an unsupported construct while rendering), render the built-in format of
 * `family` (or of the detected family when family is NULL; "chatml" when nothing matches)
 * and write a one-line explanation into warning (cap bytes; may be NULL) -- "" when no
 * fallback happened. Errors the template raises on purpose (raise_exception) are returned,
 * not papered over: the conversation does not fit the model. */
nook_status nk_chat_render_or_fallback(const char *template_src, const char *family,
                                       const json_t *messages, const json_t *tools,
                                       const json_t *kwargs, const nk_chat_options *opts,
                                       char **out, char *warning, size_t cap, nook_error *err);

/* ---- thinking ----------------------------------------------------------------------------
 * Splits generated text into reasoning (<think>...</think>) and content, incrementally:
 * feed pieces as they are decoded; each call reports the new reasoning and content bytes.
 * A tag split across pieces is held back until it is known to be (or not be) a tag.
 * Qwen3 opens with "<think>\n" itself unless thinking is disabled; when the template already
 * wrote "<think>" into the prompt, start the splitter with in_think=true.
 * Bytes only; no allocation after init (the held-back tail is at most a tag long). */
typedef struct nk_think_splitter {
    int state;               /* 0 start (maybe "<think>"), 1 inside reasoning, 2 content */
    char held[16];           /* a possible partial tag */
    size_t n_held;
    size_t pending_nl;       /* reasoning newlines not yet known to be non-trailing */
    bool think_started;      /* reasoning text (not just newlines) has been emitted */
    bool skip_nl;            /* content right after </think>: leading newlines are dropped */
} nk_think_splitter;

void nk_think_init(nk_think_splitter *s, bool in_think);
/* Feed len bytes. Reasoning bytes are appended through on_think, content through on_content
 * (either may be NULL to drop). Call nk_think_finish at end of stream to flush held bytes. */
typedef void (*nk_think_sink)(const char *s, size_t len, void *ud);
void nk_think_feed(nk_think_splitter *s, const char *text, size_t len,
                   nk_think_sink on_think, nk_think_sink on_content, void *ud);
void nk_think_finish(nk_think_splitter *s, nk_think_sink on_think, nk_think_sink on_content, void *ud);

#endif /* NK_CHAT_H */
