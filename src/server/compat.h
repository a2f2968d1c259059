/*
 * compat.h: OpenAI's Responses API (POST /v1/responses) and Anthropic's Messages API
 * (POST /v1/messages), served as Ollama serves them: each request is translated into
 * an OpenAI chat request (the same flow as /v1/chat/completions: routes_gen.c), and the
 * answer is written back in the API's own shape, whole or as its SSE event sequence.
 *
 * Text in and out (with thinking, as a reasoning item / a thinking block) and function
 * tools (Anthropic tool_use / tool_result blocks, Responses function_call /
 * function_call_output items, tool_choice), which become the chat request's tools,
 * tool_calls and tool messages, so the model's template renders them and the answer is
 * parsed for calls as on /v1/chat/completions. Images, server tools and server-side
 * state (previous_response_id, conversation) are refused with a 400 naming the field,
 * never silently dropped. See docs/api.md.
 */
#ifndef NOOK_SERVER_COMPAT_H
#define NOOK_SERVER_COMPAT_H

#include "server/server.h"

typedef enum srv_shape {
    SRV_SHAPE_CHAT = 0,     /* /v1/chat/completions itself (no translation)  */
    SRV_SHAPE_RESPONSES,    /* /v1/responses                                 */
    SRV_SHAPE_MESSAGES,     /* /v1/messages                                  */
} srv_shape;

/* A new OpenAI chat-completions body carrying what `body` asks (model, messages with the
 * system text first, max tokens, stop, sampling, stream, structured output, reasoning,
 * nook's num_ctx/options and route). NULL with msg (a 400) for a request nook cannot
 * serve faithfully (tools, images, stored state, a field of the wrong type). */
json_t *srv_compat_to_chat(srv_shape shape, const json_t *body, char *msg, size_t cap);

/* Where streamed bytes go (the job's stream); false: the client is gone. */
typedef bool (*srv_sink_fn)(void *ud, const char *s, size_t n);

/* One streamed answer's state: which output item / content block is open, its text so
 * far, the Responses sequence numbers. Zeroed, then srv_compat_init. */
typedef struct srv_compat {
    srv_shape shape;
    char id[48];            /* resp_... / msg_...                                */
    char msg_id[48];        /* Responses: the message item's id                  */
    char rs_id[48];         /* Responses: the reasoning item's id                */
    const char *model;
    int64_t created;
    int input_tokens;       /* the prompt's tokens (message_start needs them)    */
    int seq;                /* Responses: sequence_number of the next event      */
    bool opened;            /* the opening events were sent                      */
    int open;               /* the open item / block: 0 none, 1 thinking, 2 text */
    int n_blocks;           /* items / blocks opened so far                      */
    bool had_text;
    char *text, *think;     /* the open item's text (nk_malloc'd)                */
    size_t text_n, think_n;
    json_t *items;          /* Responses: the finished output items              */
    json_t *echo;           /* Responses: request fields echoed in the response  */
    char *stop_seq;         /* Messages: the stop string that ended it (nk_strdup) */
} srv_compat;

void srv_compat_init(srv_compat *c, srv_shape shape, const char *model, int64_t created, const json_t *request);
void srv_compat_clear(srv_compat *c);
/* The stop string that ended the local generation (the DONE event's `stop`): Anthropic
 * answers stop_reason "stop_sequence" with it. A copy is kept; NULL clears it. */
void srv_compat_set_stop(srv_compat *c, const char *stop);

/* Streamed text (content and/or thinking) as the API's delta events, preceded by the
 * opening events the first time. */
bool srv_compat_delta(srv_compat *c, const char *content, size_t cn, const char *thinking, size_t tn,
                      srv_sink_fn sink, void *ud);
/* The closing events: the open block ends, the tool calls (nook_tool_parse's shape, or
 * NULL) as tool_use blocks / function_call items, then the message's end (Anthropic:
 * message_delta with stop_reason and usage, message_stop; Responses: the items' done
 * events, response.completed or response.incomplete with usage). length: the token
 * limit ended it. */
bool srv_compat_finish(srv_compat *c, bool length, const json_t *calls, int input_tokens, int output_tokens,
                       srv_sink_fn sink, void *ud);
/* An error after streaming began (the API's error event). */
bool srv_compat_error(srv_compat *c, const char *message, srv_sink_fn sink, void *ud);

/* The whole (not streamed) answer in the API's shape. */
json_t *srv_compat_whole(srv_compat *c, const char *content, const char *thinking, const json_t *calls, bool length,
                         int input_tokens, int output_tokens);

#endif
