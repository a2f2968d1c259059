/*
 * request.h: request bodies of the generation and embedding endpoints, read the way
 * Ollama reads them, into one struct the routes hand to the engine.
 *
 * Tolerance (as Ollama): unknown fields and unknown options are ignored; `name` is
 * accepted for `model`; no Content-Type is needed; numbers given as 10.0 for integer
 * options are accepted; OpenAI `content` given as an array of text parts is joined
 * (parts separated by "\n"). Strictness: a known field of the wrong type, a value out
 * of range (num_ctx, num_predict, top_logprobs, ...), images, more messages than the
 * limit are refused with 400 and a message naming the field.
 *
 * Option fields hold "unset" until given (see the SRV_OPT_* bits), so the route can
 * layer defaults: server environment < model < request.
 *
 * Extra fields owned by other modules (grammar: format / response_format / tools;
 * router: route): add an entry to k_exts in request.c and an SRV_EXT_* index below;
 * your parse function reads its fields from the body (borrowed, alive as long as the
 * request) into req->ext[index], returns 0 or 400 with a message. The routes pass
 * req->ext[] on to your module.
 */
#ifndef NOOK_SERVER_REQUEST_H
#define NOOK_SERVER_REQUEST_H

#include "server/server.h"

typedef enum srv_kind {
    SRV_GENERATE,        /* POST /api/generate             */
    SRV_CHAT,            /* POST /api/chat                 */
    SRV_OAI_CHAT,        /* POST /v1/chat/completions      */
    SRV_OAI_COMPLETION,  /* POST /v1/completions           */
    SRV_EMBED,           /* POST /api/embed                */
    SRV_EMBEDDINGS,      /* POST /api/embeddings (legacy)  */
    SRV_OAI_EMBED,       /* POST /v1/embeddings            */
    SRV_KIND_COUNT
} srv_kind;

enum {  /* srv_options.set bits */
    SRV_OPT_NUM_CTX = 1u << 0, SRV_OPT_NUM_PREDICT = 1u << 1, SRV_OPT_TEMPERATURE = 1u << 2,
    SRV_OPT_TOP_K = 1u << 3, SRV_OPT_TOP_P = 1u << 4, SRV_OPT_MIN_P = 1u << 5,
    SRV_OPT_REPEAT_PENALTY = 1u << 6, SRV_OPT_REPEAT_LAST_N = 1u << 7,
    SRV_OPT_PRESENCE_PENALTY = 1u << 8, SRV_OPT_FREQUENCY_PENALTY = 1u << 9, SRV_OPT_SEED = 1u << 10,
    SRV_OPT_STOP = 1u << 11, SRV_OPT_NUM_THREAD = 1u << 12, SRV_OPT_NUM_KEEP = 1u << 13,
    SRV_OPT_NUM_BATCH = 1u << 14,
};

typedef struct srv_options {
    unsigned set;                 /* SRV_OPT_* bits of the fields given */
    int      num_ctx;             /* 1 .. 1<<24                          */
    int      num_predict;         /* -2 (fill context), -1 (no limit), >= 0 */
    float    temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    int      top_k, repeat_last_n, num_thread, num_keep, num_batch;
    int64_t  seed;                /* -1: random                          */
    char   **stop;                /* n_stop strings                      */
    int      n_stop;
} srv_options;

typedef struct srv_message {
    char *role;                   /* system, user, assistant, tool       */
    char *content;                /* text ("" when none)                 */
    char *thinking;               /* assistant reasoning or NULL         */
    char *tool_name;              /* tool results: the tool's name, or NULL */
    char *tool_call_id;
    json_t *tool_calls;           /* assistant tool calls (Ollama's shape), or NULL */
} srv_message;

typedef enum srv_think { SRV_THINK_UNSET = 0, SRV_THINK_OFF, SRV_THINK_ON } srv_think;

enum { SRV_EXT_COUNT = 4 };       /* room for other modules' fields (see above) */
enum { SRV_EXT_GRAMMAR = 0 };     /* req_grammar.c: format / response_format / tool_choice */
enum { SRV_EXT_ROUTE = 1 };       /* router: the request's "route" object as an nk_route_req */

typedef struct srv_gen_request {
    srv_kind kind;
    char    *model;               /* as given: a GGUF path or a store name */
    /* generate / completions */
    char    *prompt, *suffix, *system, *template_text;
    bool     raw;
    int32_t *context;             /* Ollama's legacy context tokens       */
    int      n_context;
    /* chat */
    srv_message *messages;
    int      n_messages;
    /* both */
    bool     stream;              /* Ollama default true; OpenAI default false */
    bool     has_keep_alive;
    int64_t  keep_alive_ns;       /* < 0 forever, 0 unload after          */
    srv_think think;
    char     think_level[8];      /* "low", "medium", "high", "max" or "" */
    bool     logprobs;
    int      top_logprobs;        /* 0..20                                */
    srv_options opt;
    /* OpenAI */
    int      n;                   /* choices (1)                          */
    bool     include_usage;       /* stream_options.include_usage         */
    /* embeddings */
    char   **inputs;
    int      n_inputs;
    bool     input_is_array;      /* a list was given (shapes the reply) */
    bool     truncate;            /* default true                         */
    int      dimensions;          /* 0: all                               */
    bool     base64;              /* OpenAI encoding_format "base64"      */
    /* the whole body, borrowed, for extension modules and echoing */
    json_t  *body;
    void    *ext[SRV_EXT_COUNT];
} srv_gen_request;

/* Reads body (a JSON object) as a request of the given kind. On error returns an HTTP
 * status (400) with msg set, and leaves *out cleared; on success 0. max_messages is
 * the configured limit. Free with srv_gen_request_free (also after an error). */
int srv_gen_request_parse(const json_t *body, srv_kind kind, int max_messages, srv_gen_request *out,
                          char *msg, size_t cap);
void srv_gen_request_free(srv_gen_request *r);

/* Layers defaults under the request's options: params is an object of Ollama option
 * names (a Modelfile's PARAMETER layer, the `options` shape); each option the request
 * did not set is taken from it. Returns 0, or 400 with msg for a value of the wrong
 * type or range (checked as the request's own options). */
int srv_options_layer(srv_options *o, const json_t *params, char *msg, size_t cap);

/* A store model's Modelfile settings as defaults under the request (model_defaults.c),
 * as Ollama applies them: PARAMETER under `options`, SYSTEM as the system prompt when the
 * request gives none (generate: `system`; chat: a system message put first when the
 * conversation has none), TEMPLATE (translated to Jinja) when the request gives no
 * `template`, MESSAGE turns before the conversation. A GGUF path has no settings; a
 * name the store cannot resolve is left to the model lookup (404 there). Returns 0 or
 * an HTTP status with msg. Call before the model is acquired (num_ctx may come from it). */
int srv_model_defaults(srv_gen_request *q, char *msg, size_t cap);

/* ---- structured output (req_grammar.c), in ext[SRV_EXT_GRAMMAR] (NULL: none) ---- */
typedef struct srv_grammar_req {
    char *format;        /* "json" or schema text (checked): nook_gen_params.format  */
    char *tools_json;    /* a forced tool call: the tools and the choice ("required" */
    char *tool_choice;   /* or a function name); grammar made by srv_grammar_apply   */
    char *grammar;
} srv_grammar_req;
int  srv_grammar_parse(const json_t *body, srv_kind kind, void **slot, char *msg, size_t cap);
void srv_grammar_free(void *slot);
/* Sets gp->format or gp->grammar from the slot (pointers into the slot: keep the request
 * alive while generating). chat_template: the model's (the tool-call format). */
nook_status srv_grammar_apply(void *slot, const char *chat_template, nook_gen_params *gp, nook_error *err);

/* Tool calls in the reply. srv_tools_offered: the request's tools (a non-empty array,
 * borrowed from the body) when the answer is to be parsed for calls: a chat request
 * (Ollama's or OpenAI's) whose tool_choice is not "none"; else NULL (with "none" the
 * tools are not rendered either). srv_tool_calls_for: nook_tool_parse's calls (a JSON
 * array, OpenAI's shape with arguments as an object) in the API's reply shape, a new
 * reference: Ollama [{"id","function":{"index","name","arguments":{..}}}]; OpenAI
 * [{"id","type":"function","function":{"name","arguments":"<JSON text>"}}], with
 * "index" in streamed deltas. */
const json_t *srv_tools_offered(const srv_gen_request *q);
json_t *srv_tool_calls_for(srv_kind kind, const json_t *calls, bool stream);

#endif /* NOOK_SERVER_REQUEST_H */
