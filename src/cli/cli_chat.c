/*
 * cli_chat.c: the interactive `nook run MODEL` (stdin a terminal, no prompt given):
 * a multi-turn conversation with Ollama's muscle memory.
 *
 *   >>> a line                 one user turn (the model's chat template, or plain
 *                              completion of the conversation for a model without one)
 *   >>> """ ... """            a multi-line turn
 *   /set parameter NAME VALUE  temperature, top_k, top_p, min_p, seed, num_predict,
 *                              repeat_penalty, repeat_last_n, num_ctx, stop
 *   /set system TEXT, /set think|nothink, /set format json|/set noformat,
 *   /set verbose|quiet, /set wordwrap|nowordwrap
 *   /show info|template|parameters|system, /load MODEL, /save NAME, /clear, /bye, /?
 *
 * /save NAME makes a model in the store from this session, as Ollama's does: FROM the
 * model in use, its PARAMETERs with the ones /set here, the system message, and the
 * conversation so far as MESSAGEs; `nook run NAME` (or /load NAME) starts from that
 * conversation again.
 *
 * Line editing and persistent history come from libedit (its readline interface);
 * history lives in $NOOK_HOME/history (default ~/.nook/history). Ctrl-C stops the
 * current generation (the event callback returns false, and the session's abort hook
 * stops a long prompt evaluation inside the forward pass) and returns to the prompt;
 * at the prompt it clears the line; Ctrl-D on an empty line leaves.
 *
 * Generation is the library's loop (nook_generate): nothing here samples or decodes.
 * With a server running (cli_chat_cfg.server), the same conversation talks to it: no
 * model is loaded here, each turn is a streamed /api/chat carrying the conversation so
 * far (the server's prefix cache decodes only what is new), its lines go through the
 * same printing as the library's events, and Ctrl-C closes the stream (the server
 * cancels that generation) and returns to the prompt. Everything else (input, /set,
 * /clear, /save, history) is this one REPL for both backends.
 * Output is word-wrapped to the terminal width as Ollama's CLI does, thinking is
 * printed dimmed between "Thinking..." and "...done thinking.".
 */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include <editline/readline.h>
#include <limits.h>
#include <jansson.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#define CHAT_MAX_STOP 8
#define CHAT_MAX_TURNS 4096

typedef struct chat_state {
    const cli_chat_cfg *cfg;
    char *model_path;
    nook_model *m;
    nook_session *s;
    nook_session_params sp;
    nook_gen_params gp;
    int think;                 /* -1 template default, 0 off, 1 on */
    bool verbose, wordwrap, format_json;
    char *system;              /* /set system (the Modelfile's SYSTEM at first), or NULL */
    char *name;                /* the model as the user named it (store name or path)    */
    json_t *params;            /* its PARAMETERs, with those /set here (for /save)        */
    const char *template_src;  /* the Modelfile's TEMPLATE as Jinja, or NULL (the GGUF's) */
    char *stop[CHAT_MAX_STOP];
    int n_stop;
    /* the conversation: role, content, thinking (owned strings) */
    nook_message *msgs;
    int n_msgs;
    /* a running server instead of a model here (cli_chat_cfg.server) */
    const cli_server *srv;
    char srv_model[PATH_MAX + 1];   /* MODEL as the server reads it */
    json_t *opts;                   /* Ollama's options sent with every turn */
} chat_state;

static volatile sig_atomic_t g_sigint;
static void on_sigint(int sig) { (void)sig; g_sigint = 1; }

/* The session's abort hook: polled inside the forward pass. */
static bool abort_requested(void *ud) { (void)ud; return g_sigint != 0; }

/* ---- the spinner shown while a model loads --------------------------------------------- */

typedef struct spinner {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, running;
} spinner;

static void *spin_main(void *arg) {
    spinner *sp = arg;
    static const char *const frames[] = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" };
    int i = 0;
    pthread_mutex_lock(&sp->mu);
    while (!sp->stop) {
        fprintf(stderr, "\r%s ", frames[i++ % 10]);
        fflush(stderr);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&sp->cv, &sp->mu, &ts);
    }
    pthread_mutex_unlock(&sp->mu);
    fputs("\r  \r", stderr);
    fflush(stderr);
    return NULL;
}

static void spin_start(spinner *sp) {
    memset(sp, 0, sizeof *sp);
    pthread_mutex_init(&sp->mu, NULL);
    pthread_cond_init(&sp->cv, NULL);
    sp->running = pthread_create(&sp->th, NULL, spin_main, sp) == 0;
}

static void spin_stop(spinner *sp) {
    if (sp->running) {
        pthread_mutex_lock(&sp->mu);
        sp->stop = true;
        pthread_cond_signal(&sp->cv);
        pthread_mutex_unlock(&sp->mu);
        pthread_join(sp->th, NULL);
    }
    pthread_mutex_destroy(&sp->mu);
    pthread_cond_destroy(&sp->cv);
}

/* ---- word-wrapped, streamed output ---------------------------------------------------- */

/* Ollama's CLI wraps at word boundaries: a word is held until the space after it, then
 * goes on the current line if it fits, else on a new one. Widths come from utf8proc. */
typedef struct wrap_out {
    int width, col;
    char word[512];
    size_t n_word;
    int word_cols;
    bool dim;                  /* inside the dimmed thinking block */
} wrap_out;

static int term_width(void) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) return ws.ws_col;
    return 80;
}

static void wrap_flush_word(wrap_out *w) {
    if (!w->n_word) return;
    if (w->width > 0 && w->col > 0 && w->col + w->word_cols > w->width) {
        fputc('\n', stdout);
        w->col = 0;
    }
    fwrite(w->word, 1, w->n_word, stdout);
    w->col += w->word_cols;
    w->n_word = 0;
    w->word_cols = 0;
}

/* Whole UTF-8 text in (the generation loop never splits a character). */
static void wrap_put(wrap_out *w, const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { cp = 0xFFFD; k = 1; }
        if (cp == '\n') {
            wrap_flush_word(w);
            fputc('\n', stdout);
            w->col = 0;
        } else if (cp == ' ' || cp == '\t') {
            wrap_flush_word(w);
            if (w->width > 0 && w->col + 1 > w->width) { fputc('\n', stdout); w->col = 0; }
            else { fputc(' ', stdout); w->col++; }
        } else {
            if (w->n_word + (size_t)k > sizeof w->word) wrap_flush_word(w);   /* a very long word */
            memcpy(w->word + w->n_word, p + i, (size_t)k);
            w->n_word += (size_t)k;
            int cw = utf8proc_charwidth(cp);
            w->word_cols += cw > 0 ? cw : 0;
        }
        i += (size_t)k;
    }
    if (w->width <= 0) wrap_flush_word(w);   /* no wrapping: nothing held back */
    fflush(stdout);
}

/* ---- one turn -------------------------------------------------------------------------- */

typedef struct turn_out {
    wrap_out w;
    bool opened, closed, failed;
    char *content, *thinking;   /* what the model said, kept for the conversation */
    size_t n_content, n_thinking, cap_content, cap_thinking;
    nook_done_reason reason;
    nook_timings t;
    char error[512];
} turn_out;

static bool append(char **buf, size_t *n, size_t *cap, const char *p, size_t k) {
    if (*n + k + 1 > *cap) {
        size_t nc = (*cap ? *cap * 2 : 256);
        while (nc < *n + k + 1) nc *= 2;
        char *b = nk_realloc(*buf, nc);
        if (!b) return false;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *n, p, k);
    *n += k;
    (*buf)[*n] = 0;
    return true;
}

static void think_close(turn_out *o) {
    if (o->opened && !o->closed) {
        wrap_flush_word(&o->w);
        fputs("\033[0m\n...done thinking.\n\n", stdout);
        o->w.col = 0;
        o->closed = true;
    }
}

static bool on_event(const nook_event *ev, void *ud) {
    turn_out *o = ud;
    if (ev->thinking_len) {
        if (!o->opened) {
            fputs("Thinking...\n\033[2m", stdout);
            o->opened = true;
            o->w.col = 0;
        }
        wrap_put(&o->w, ev->thinking, ev->thinking_len);
        if (!append(&o->thinking, &o->n_thinking, &o->cap_thinking, ev->thinking, ev->thinking_len)) o->failed = true;
    }
    if (ev->content_len) {
        think_close(o);
        wrap_put(&o->w, ev->content, ev->content_len);
        if (!append(&o->content, &o->n_content, &o->cap_content, ev->content, ev->content_len)) o->failed = true;
    }
    if (ev->kind == NOOK_EVENT_DONE) {
        think_close(o);
        wrap_flush_word(&o->w);
        o->reason = ev->done_reason;
        if (ev->timings) o->t = *ev->timings;
        if (ev->error) snprintf(o->error, sizeof o->error, "%s", ev->error);
    }
    return !o->failed && !g_sigint;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = nk_malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static void clear_conversation(chat_state *c) {
    for (int i = 0; i < c->n_msgs; i++) {
        nk_free((char *)c->msgs[i].content);
        nk_free((char *)c->msgs[i].thinking);
    }
    c->n_msgs = 0;
}

static bool push_msg(chat_state *c, const char *role, char *content, char *thinking) {
    if (c->n_msgs >= CHAT_MAX_TURNS) return false;
    c->msgs[c->n_msgs++] = (nook_message){ .role = role, .content = content, .thinking = thinking };
    return true;
}

/* A model without a chat template continues the conversation's text as plain
 * completion: every turn, user and model, joined in order. */
static char *plain_text(const chat_state *c) {
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (c->system && !append(&buf, &n, &cap, c->system, strlen(c->system))) goto oom;
    for (int i = 0; i < c->n_msgs; i++)
        if (!append(&buf, &n, &cap, c->msgs[i].content, strlen(c->msgs[i].content))) goto oom;
    if (!buf) buf = dup_str("");
    return buf;
oom:
    nk_free(buf);
    return NULL;
}

/* ---- the server backend: a turn is a streamed /api/chat ---------------------------------- */

/* One NDJSON object of the answer, given to on_event as the library's event would be. */
static bool on_chat_obj(const json_t *o, void *ud) {
    turn_out *out = ud;
    const json_t *msg = json_object_get(o, "message");
    const json_t *ct = json_object_get(msg, "content"), *th = json_object_get(msg, "thinking");
    nook_event ev = { .kind = NOOK_EVENT_TOKEN, .id = -1 };
    if (json_is_string(th)) { ev.thinking = json_string_value(th); ev.thinking_len = json_string_length(th); }
    if (json_is_string(ct)) { ev.content = json_string_value(ct); ev.content_len = json_string_length(ct); }
    nook_timings t = { 0 };
    const char *err = json_string_value(json_object_get(o, "error"));
    if (json_is_true(json_object_get(o, "done")) || err) {
        ev.kind = NOOK_EVENT_DONE;
        const char *why = json_string_value(json_object_get(o, "done_reason"));
        ev.done_reason = err ? NOOK_DONE_ERROR : why && !strcmp(why, "length") ? NOOK_DONE_LENGTH : NOOK_DONE_STOP;
        ev.error = err;
        t = cli_timings_json(o);
        ev.timings = &t;
    }
    return on_event(&ev, out);
}

/* The request for this turn: the conversation (system first), options, think, format. */
static json_t *chat_body(const chat_state *c) {
    json_t *msgs = json_array();
    if (c->system) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", c->system));
    for (int i = 0; i < c->n_msgs; i++)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", c->msgs[i].role, "content", c->msgs[i].content));
    json_t *b = json_pack("{s:s,s:o,s:b}", "model", c->srv_model, "messages", msgs, "stream", 1);
    if (!b) return NULL;
    if (c->think >= 0) json_object_set_new(b, "think", json_boolean(c->think));
    if (c->format_json) json_object_set_new(b, "format", json_string("json"));
    if (json_object_size(c->opts)) json_object_set(b, "options", c->opts);
    return b;
}

/* The server backend of a turn. Ctrl-C closes the stream (the server cancels the
 * generation when its client leaves). */
static nook_status server_turn(chat_state *c, turn_out *o, nook_error *err) {
    json_t *body = chat_body(c);
    if (!body) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    char msg[1024];
    int rc = cli_client_stream(c->srv, "/api/chat", body, on_chat_obj, o, (const volatile int *)&g_sigint, msg, sizeof msg);
    json_decref(body);
    if (rc == 1) {
        if (o->reason == NOOK_DONE_NONE) o->reason = NOOK_DONE_CANCELLED;
        return NOOK_OK;
    }
    if (rc < 0 && o->reason == NOOK_DONE_NONE && !o->n_content && !o->n_thinking)
        return nk_fail(err, NOOK_EINVAL, "%s", msg);   /* refused: nothing was answered */
    if (rc < 0) {
        if (!o->error[0]) snprintf(o->error, sizeof o->error, "%.500s", msg);
        o->reason = NOOK_DONE_ERROR;
    }
    return NOOK_OK;
}

/* The in-process backend: the conversation through the chat template (or as plain
 * text), nook_generate on the session. */
static nook_status local_turn(chat_state *c, turn_out *o, nook_error *err) {
    const char *tmpl = c->template_src ? c->template_src : nook_model_chat_template(c->m);
    nook_prompt pr = nook_prompt_default();
    pr.template_src = c->template_src;
    char *text = NULL;
    nook_message *all = NULL;
    if (tmpl && tmpl[0]) {
        /* the system prompt first, then the turns */
        all = nk_alloc_array((size_t)c->n_msgs + 1, sizeof *all);
        if (!all) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        int k = 0;
        if (c->system) all[k++] = (nook_message){ .role = "system", .content = c->system };
        memcpy(all + k, c->msgs, (size_t)c->n_msgs * sizeof *all);
        pr.messages = all;
        pr.n_messages = k + c->n_msgs;
        pr.think = c->think;
    } else {
        text = plain_text(c);
        if (!text) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        pr.text = text;
    }
    nook_gen_params gp = c->gp;
    gp.stop = (const char *const *)c->stop;
    gp.n_stop = c->n_stop;
    gp.format = c->format_json ? "json" : NULL;
    nook_session_truncate(c->s, 0);
    nook_status st = nook_generate(c->s, &pr, &gp, on_event, o, err);
    nk_free(all);
    nk_free(text);
    return st;
}

/* One turn, on either backend: the answer is printed as it comes and joins the
 * conversation (a cancelled one too, as far as it got). */
static void turn(chat_state *c, char *user) {
    if (!push_msg(c, "user", user, NULL)) {
        nk_free(user);
        cli_fail(CLI_EFAIL, "the conversation is too long; /clear starts a new one");
        return;
    }
    turn_out o = { .w = { .width = c->wordwrap ? term_width() : 0 } };
    nook_error err = { 0 };
    g_sigint = 0;
    nook_status st = c->srv ? server_turn(c, &o, &err) : local_turn(c, &o, &err);
    bool cancelled = g_sigint != 0 || o.reason == NOOK_DONE_CANCELLED;
    g_sigint = 0;
    think_close(&o);
    wrap_flush_word(&o.w);
    if (o.w.col > 0 || o.n_content || o.n_thinking) fputc('\n', stdout);
    fflush(stdout);
    if (st != NOOK_OK && o.reason == NOOK_DONE_NONE) {   /* refused before generating */
        if (cancelled || st == NOOK_EABORTED) fputs("\n", stderr);
        else if (st == NOOK_ERANGE) cli_fail(CLI_EFAIL, "%s; /clear or /set parameter num_ctx N", err.msg);
        else cli_fail(CLI_EFAIL, "%s", err.msg);
        nk_free(o.content);
        nk_free(o.thinking);
        nk_free((char *)c->msgs[--c->n_msgs].content);
        return;
    }
    if (o.reason == NOOK_DONE_ERROR) cli_fail(CLI_EFAIL, "%s", o.error);
    if (c->verbose && (!c->srv || !cancelled)) cli_print_timings(&o.t);
    fputc('\n', stdout);
    if (!o.content) o.content = dup_str("");
    if (!o.content || !push_msg(c, "assistant", o.content, o.thinking)) {
        nk_free(o.content);
        nk_free(o.thinking);
    }
}

/* ---- commands ------------------------------------------------------------------------------ */

static void help(void) {
    fputs("Available Commands:\n"
          "  /set            Set session variables\n"
          "  /show           Show model information\n"
          "  /load <model>   Load a session or model\n"
          "  /save <model>   Save your current session\n"
          "  /clear          Clear session context\n"
          "  /bye            Exit\n"
          "  /?, /help       Help for a command\n"
          "\n"
          "Use \"\"\" to begin a multi-line message.\n\n", stdout);
}

static void help_set(void) {
    fputs("Available Commands:\n"
          "  /set parameter ...     Set a parameter\n"
          "  /set system <string>   Set system message\n"
          "  /set think             Enable thinking\n"
          "  /set nothink           Disable thinking\n"
          "  /set format json       Enable JSON mode\n"
          "  /set noformat          Disable formatting\n"
          "  /set verbose           Show LLM stats\n"
          "  /set quiet             Disable LLM stats\n"
          "  /set wordwrap          Enable wordwrap\n"
          "  /set nowordwrap        Disable wordwrap\n\n"
          "Parameters:\n"
          "  /set parameter seed <int>             Random number seed\n"
          "  /set parameter num_predict <int>      Max number of tokens to predict\n"
          "  /set parameter top_k <int>            Pick from top k num of tokens\n"
          "  /set parameter top_p <float>          Pick token based on sum of probabilities\n"
          "  /set parameter min_p <float>          Pick token based on top token probability * min_p\n"
          "  /set parameter num_ctx <int>          Set the context size\n"
          "  /set parameter temperature <float>    Set creativity level\n"
          "  /set parameter repeat_penalty <float> How strongly to penalize repetitions\n"
          "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions\n"
          "  /set parameter stop <string> <string> ...   Set the stop parameters\n\n", stdout);
}

static void help_show(void) {
    fputs("Available Commands:\n"
          "  /show info         Show details for this model\n"
          "  /show parameters   Show parameters for this model\n"
          "  /show system       Show system message\n"
          "  /show template     Show prompt template\n\n", stdout);
}

static bool parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end || !(x >= lo && x <= hi)) return false;
    *out = x;
    return true;
}

/* A new session (after /load or num_ctx): the old one is freed first so the memory of
 * both is never held at once. */
static bool new_session(chat_state *c) {
    if (c->s) nook_session_free(c->s);
    c->s = NULL;
    nook_error err = { 0 };
    if (nook_session_new(c->m, &c->sp, &c->s, &err) != NOOK_OK) {
        cli_fail(CLI_EFAIL, "%s", err.msg);
        return false;
    }
    nook_session_set_abort(c->s, abort_requested, NULL);
    return true;
}

static void set_parameter(chat_state *c, char *args) {
    char *save = NULL;
    char *name = strtok_r(args, " \t", &save);
    char *val = name ? strtok_r(NULL, " \t", &save) : NULL;
    if (!name || !val) { fputs("Usage: /set parameter <name> <value>\n", stdout); return; }
    double x;
    nook_sampler_params *sp = &c->gp.sampler;
    if (!strcmp(name, "stop")) {
        for (int i = 0; i < c->n_stop; i++) nk_free(c->stop[i]);
        c->n_stop = 0;
        json_t *arr = json_array();
        for (char *v = val; v && c->n_stop < CHAT_MAX_STOP; v = strtok_r(NULL, " \t", &save))
            if ((c->stop[c->n_stop] = dup_str(v))) {
                json_array_append_new(arr, json_string(c->stop[c->n_stop]));
                c->n_stop++;
            }
        if (c->opts && arr) json_object_set(c->opts, "stop", arr);
        if (c->params && arr) json_object_set_new(c->params, "stop", arr);
        else json_decref(arr);
        printf("Set parameter 'stop' to '%s'\n", val);
        return;
    }
    struct { const char *name; double lo, hi; } k[] = {
        { "temperature", 0, 100 }, { "top_k", 0, 1e9 }, { "top_p", 0, 1 }, { "min_p", 0, 1 },
        { "seed", 0, 9.2e18 }, { "num_predict", -2, 1e9 }, { "repeat_penalty", 1e-6, 100 },
        { "repeat_last_n", -1, 1e9 }, { "num_ctx", 16, 1 << 24 },
    };
    int i = 0;
    while (i < (int)NK_ARRAY_LEN(k) && strcmp(k[i].name, name)) i++;
    if (i == (int)NK_ARRAY_LEN(k)) { printf("Unknown parameter '%s'\n", name); return; }
    if (!parse_num(val, k[i].lo, k[i].hi, &x)) {
        printf("Couldn't set parameter: '%s' must be a number in [%g, %g]\n", name, k[i].lo, k[i].hi);
        return;
    }
    switch (i) {
    case 0: sp->temperature = (float)x; break;
    case 1: sp->top_k = (int)x; break;
    case 2: sp->top_p = (float)x; break;
    case 3: sp->min_p = (float)x; break;
    case 4: sp->seed = (uint64_t)x == 0 ? 0x9E3779B97F4A7C15ull : (uint64_t)x; break;
    case 5: c->gp.num_predict = (int)x; break;
    case 6: sp->repeat_penalty = (float)x; break;
    case 7: sp->repeat_last_n = (int)x; break;
    case 8:
        c->sp.n_ctx = (int)x;
        if (!c->srv && !new_session(c)) return;
        break;
    }
    if (c->opts) {   /* the server backend: sent with every turn from now on */
        bool is_int = i == 1 || i == 4 || i == 5 || i == 7 || i == 8;
        json_object_set_new(c->opts, name, is_int ? json_integer((json_int_t)x) : json_real(x));
    }
    if (c->params) {   /* kept as /save will write it: integers stay integers */
        bool is_int = i == 1 || i == 4 || i == 5 || i == 7 || i == 8;
        json_object_set_new(c->params, name, is_int ? json_integer((json_int_t)x) : json_real(x));
    }
    printf("Set parameter '%s' to '%s'\n", name, val);
}

static void cmd_set(chat_state *c, char *args) {
    while (*args == ' ') args++;
    if (!strncmp(args, "parameter", 9) && (args[9] == ' ' || !args[9])) { set_parameter(c, args + 9); return; }
    if (!strncmp(args, "system", 6) && (args[6] == ' ' || !args[6])) {
        char *t = args + 6;
        while (*t == ' ') t++;
        size_t n = strlen(t);
        if (n >= 2 && t[0] == '"' && t[n - 1] == '"') { t[n - 1] = 0; t++; }
        nk_free(c->system);
        c->system = *t ? dup_str(t) : NULL;
        fputs("Set system message.\n", stdout);
        return;
    }
    struct { const char *w; int what; } k[] = {
        { "think", 1 }, { "nothink", 2 }, { "format json", 3 }, { "noformat", 4 }, { "verbose", 5 },
        { "quiet", 6 }, { "wordwrap", 7 }, { "nowordwrap", 8 },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(k); i++) {
        if (strcmp(args, k[i].w)) continue;
        switch (k[i].what) {
        case 1: c->think = 1; fputs("Set 'think' mode.\n", stdout); break;
        case 2: c->think = 0; fputs("Set 'nothink' mode.\n", stdout); break;
        case 3: c->format_json = true; fputs("Set format to 'json' mode.\n", stdout); break;
        case 4: c->format_json = false; fputs("Disabled format.\n", stdout); break;
        case 5: c->verbose = true; fputs("Set 'verbose' mode.\n", stdout); break;
        case 6: c->verbose = false; fputs("Set 'quiet' mode.\n", stdout); break;
        case 7: c->wordwrap = true; fputs("Set 'wordwrap' mode.\n", stdout); break;
        case 8: c->wordwrap = false; fputs("Set 'nowordwrap' mode.\n", stdout); break;
        }
        return;
    }
    help_set();
}

/* /show info and /show template from the server's /api/show. */
static void show_from_server(chat_state *c, const char *what) {
    char msg[1024];
    json_t *b = json_pack("{s:s}", "model", c->srv_model);
    json_t *j = b ? cli_client_post(c->srv, "/api/show", b, 30000, msg, sizeof msg) : NULL;
    json_decref(b);
    if (!j) { cli_fail(CLI_EFAIL, "%s", b ? msg : "out of memory"); return; }
    if (!strcmp(what, "template")) {
        const char *t = json_string_value(json_object_get(j, "template"));
        printf("%s\n", t && t[0] ? t : "No prompt template was specified for this model.");
    } else {
        const json_t *d = json_object_get(j, "details"), *mi = json_object_get(j, "model_info");
        const char *arch = json_string_value(json_object_get(mi, "general.architecture"));
        char key[128];
        printf("  Model\n    architecture        %s\n    parameters          %s\n",
               arch ? arch : "?", json_string_value(json_object_get(d, "parameter_size")) ? json_string_value(json_object_get(d, "parameter_size")) : "?");
        snprintf(key, sizeof key, "%s.context_length", arch ? arch : "");
        printf("    context length      %lld\n", (long long)json_integer_value(json_object_get(mi, key)));
        snprintf(key, sizeof key, "%s.embedding_length", arch ? arch : "");
        printf("    embedding length    %lld\n", (long long)json_integer_value(json_object_get(mi, key)));
        printf("    quantization        %s\n    served by           %s\n\n",
               json_string_value(json_object_get(d, "quantization_level")) ? json_string_value(json_object_get(d, "quantization_level")) : "?",
               c->srv->base);
    }
    json_decref(j);
}

static void cmd_show(chat_state *c, const char *what) {
    if (c->srv && (!strcmp(what, "info") || !strcmp(what, "template"))) {
        show_from_server(c, what);
    } else if (!strcmp(what, "info")) {
        printf("  Model\n    architecture        %s\n    parameters          %.2fM\n"
               "    context length      %d\n    embedding length    %d\n\n",
               nook_model_arch(c->m), nook_model_n_params(c->m) / 1e6, nook_model_n_ctx_train(c->m),
               nook_model_n_embd(c->m));
    } else if (!strcmp(what, "template")) {
        const char *t = nook_model_chat_template(c->m);
        printf("%s\n", t && t[0] ? t : "No prompt template was specified for this model.");
    } else if (!strcmp(what, "system")) {
        printf("%s\n", c->system ? c->system : "No system message was specified for this model.");
    } else if (!strcmp(what, "parameters")) {
        const nook_sampler_params *sp = &c->gp.sampler;
        printf("User defined parameters:\n%-16s %g\n%-16s %d\n%-16s %g\n%-16s %g\n%-16s %g\n%-16s %d\n%-16s %d\n%-16s %d\n",
               "temperature", sp->temperature, "top_k", sp->top_k, "top_p", sp->top_p, "min_p", sp->min_p,
               "repeat_penalty", sp->repeat_penalty, "repeat_last_n", sp->repeat_last_n,
               "num_predict", c->gp.num_predict, "num_ctx", c->s ? nook_session_n_ctx(c->s) : c->sp.n_ctx);
        for (int i = 0; i < c->n_stop; i++) printf("%-16s \"%s\"\n", "stop", c->stop[i]);
    } else {
        help_show();
    }
}

/* The model's name and PARAMETERs, remembered for /save (copies). */
static void set_origin(chat_state *c, const char *name, const json_t *params) {
    nk_free(c->name);
    c->name = dup_str(name);
    json_decref(c->params);
    c->params = params ? json_deep_copy(params) : json_object();
}

/* Starts the conversation with a model's MESSAGEs (what /save wrote), shown as they
 * would have been typed and answered. Roles other than user/assistant/system are
 * skipped (the Modelfile parser allows only those). */
static void seed_messages(chat_state *c, const json_t *msgs) {
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *text = json_string_value(json_object_get(m, "content"));
        if (!role || !text) continue;
        const char *r = !strcmp(role, "user") ? "user" : !strcmp(role, "assistant") ? "assistant"
                      : !strcmp(role, "system") ? "system" : NULL;
        char *dup = r ? dup_str(text) : NULL;
        if (!dup) continue;
        if (!push_msg(c, r, dup, NULL)) { nk_free(dup); break; }
        if (r[0] == 'u') printf(">>> %s\n", text);
        else if (r[0] == 'a') printf("%s\n\n", text);
    }
}

/* /save NAME: a model in the store made of this session (see the top of this file). */
static void cmd_save(chat_state *c, const char *name) {
    if (!*name) { fputs("Usage:\n  /save <modelname>\n", stdout); return; }
    nook_error err = { 0 };
    json_t *msgs = json_array();
    for (int i = 0; msgs && i < c->n_msgs; i++)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", c->msgs[i].role, "content", c->msgs[i].content));
    nk_modelfile mf = { .from = c->name, .system = c->system, .params = c->params, .messages = msgs };
    nk_store *st = NULL;
    if (!msgs || !c->name) cli_fail(CLI_EFAIL, "out of memory");
    else if (nk_store_open(NULL, &st, &err) != NOOK_OK || nk_create(st, name, &mf, NULL, &err) != NOOK_OK)
        cli_fail(CLI_EFAIL, "couldn't save model: %s", err.msg);
    else printf("Created new model '%s'\n", name);
    nk_store_free(st);
    json_decref(msgs);
}

/* Loads a model (with the spinner); false with the message printed on failure. The
 * first load gets the path the caller resolved; /load resolves a name through the store
 * (the new model's SYSTEM replaces the old one; a TEMPLATE of it is not carried over). */
static bool load(chat_state *c, const char *what, bool resolve) {
    if (c->srv) {
        /* the server loads it: an empty chat is Ollama's preload (and says 404 for an
         * unknown model); names resolve there */
        cli_client_model(c->srv, what, c->srv_model, sizeof c->srv_model);
        if (resolve) {
            nk_free(c->system);
            c->system = NULL;
            set_origin(c, what, NULL);
        }
        json_t *b = json_pack("{s:s,s:[]}", "model", c->srv_model, "messages");
        char msg[1024];
        spinner sp;
        spin_start(&sp);
        json_t *j = b ? cli_client_post(c->srv, "/api/chat", b, 30 * 60 * 1000, msg, sizeof msg) : NULL;
        spin_stop(&sp);
        json_decref(b);
        if (!j) { cli_fail(CLI_EFAIL, "%s", b ? msg : "out of memory"); return false; }
        json_decref(j);
        return true;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s", what);
    if (resolve) {
        nk_model_ref ref = { 0 };
        if (cli_resolve_model(what, true, &ref) != CLI_OK) return false;
        snprintf(path, sizeof path, "%s", ref.path);
        nk_free(c->system);
        c->system = ref.system ? dup_str(ref.system) : NULL;
        c->template_src = NULL;
        set_origin(c, ref.name, ref.params);
        seed_messages(c, ref.messages);
        nk_model_ref_free(&ref);
    }
    spinner sp;
    spin_start(&sp);
    double t0 = nk_time_ms();
    nook_model *m = cli_load_model(path, c->cfg->threads, c->cfg->no_mmap);
    spin_stop(&sp);
    if (!m) return false;
    if (c->s) nook_session_free(c->s);
    c->s = NULL;
    if (c->m) nook_model_free(c->m);
    c->m = m;
    if (!new_session(c)) return false;
    c->gp.load_ns = (int64_t)((nk_time_ms() - t0) * 1e6);
    return true;
}

/* ---- input ------------------------------------------------------------------------------- */

static char g_hist[4200];

static void history_path(void) {
    const char *home = getenv("NOOK_HOME");
    char dir[4096];
    if (home && home[0]) snprintf(dir, sizeof dir, "%s", home);
    else {
        const char *h = getenv("HOME");
        if (!h || !h[0]) return;
        snprintf(dir, sizeof dir, "%s/.nook", h);
    }
    mkdir(dir, 0700);   /* may exist */
    snprintf(g_hist, sizeof g_hist, "%s/history", dir);
}

/* One user input: a line, or a """-delimited block. NULL at end of input (Ctrl-D).
 * *interrupted is set when Ctrl-C cleared the line. */
static char *read_input(bool *interrupted) {
    *interrupted = false;
    g_sigint = 0;
    char *line = readline(">>> ");
    if (!line) {
        if (g_sigint) { *interrupted = true; g_sigint = 0; return NULL; }
        return NULL;
    }
    if (strncmp(line, "\"\"\"", 3) != 0) return line;
    /* multi-line: until a line ending in """ */
    char *buf = NULL;
    size_t n = 0, cap = 0;
    const char *first = line + 3;
    bool done = false;
    size_t fl = strlen(first);
    if (fl >= 3 && !strcmp(first + fl - 3, "\"\"\"")) { append(&buf, &n, &cap, first, fl - 3); done = true; }
    else append(&buf, &n, &cap, first, fl);
    free(line);
    while (!done) {
        char *l = readline("... ");
        if (!l) {
            if (g_sigint) { *interrupted = true; g_sigint = 0; }
            nk_free(buf);
            return NULL;
        }
        size_t ll = strlen(l);
        if (n) append(&buf, &n, &cap, "\n", 1);
        else if (fl) append(&buf, &n, &cap, "\n", 1);
        if (ll >= 3 && !strcmp(l + ll - 3, "\"\"\"")) { append(&buf, &n, &cap, l, ll - 3); done = true; }
        else append(&buf, &n, &cap, l, ll);
        free(l);
    }
    /* hand back a malloc'd string (readline's convention, freed with free) */
    char *out = malloc(n + 1);
    if (out) { memcpy(out, buf ? buf : "", n); out[n] = 0; }
    nk_free(buf);
    return out;
}

int cli_chat(const cli_chat_cfg *cfg) {
    chat_state c = { .cfg = cfg, .sp = cfg->sp, .gp = cfg->gp, .think = cfg->think, .template_src = cfg->template_src,
                     .verbose = cfg->verbose, .wordwrap = true };
    c.msgs = nk_alloc_array(CHAT_MAX_TURNS, sizeof *c.msgs);
    if (!c.msgs) return cli_fail(CLI_EFAIL, "out of memory");
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);   /* no SA_RESTART: a read at the prompt returns */

    if (cfg->server) {
        c.srv = cfg->server;
        c.opts = cfg->options ? json_deep_copy(cfg->options) : json_object();
    }
    if (cfg->system) c.system = dup_str(cfg->system);
    set_origin(&c, cfg->name ? cfg->name : cfg->model, cfg->params);
    if (!load(&c, cfg->model, false)) {
        nk_free(c.msgs); nk_free(c.system); nk_free(c.name); json_decref(c.params); json_decref(c.opts);
        return CLI_EFAIL;
    }
    seed_messages(&c, cfg->messages);

    history_path();
    using_history();
    if (g_hist[0]) read_history(g_hist);
    int rc = CLI_OK;
    for (;;) {
        bool intr;
        char *line = read_input(&intr);
        if (!line) {
            if (intr) { fputs("\nUse Ctrl + d or /bye to exit.\n", stdout); continue; }
            fputc('\n', stdout);
            break;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) { free(line); continue; }
        add_history(line);
        if (g_hist[0]) write_history(g_hist);
        if (*p == '/') {
            char *cmd = p;
            char *arg = strchr(cmd, ' ');
            if (arg) *arg++ = 0;
            else arg = cmd + strlen(cmd);
            while (*arg == ' ') arg++;
            if (!strcmp(cmd, "/bye") || !strcmp(cmd, "/exit")) { free(line); break; }
            else if (!strcmp(cmd, "/?") || !strcmp(cmd, "/help")) {
                if (!strcmp(arg, "set")) help_set();
                else if (!strcmp(arg, "show")) help_show();
                else help();
            } else if (!strcmp(cmd, "/set")) cmd_set(&c, arg);
            else if (!strcmp(cmd, "/show")) cmd_show(&c, arg);
            else if (!strcmp(cmd, "/clear")) {
                clear_conversation(&c);
                if (c.s) nook_session_truncate(c.s, 0);
                fputs("Cleared session context\n", stdout);
            } else if (!strcmp(cmd, "/save")) {
                cmd_save(&c, arg);
            } else if (!strcmp(cmd, "/load")) {
                if (!*arg) fputs("Usage:\n  /load <modelname>\n", stdout);
                else {
                    printf("Loading model '%s'\n", arg);
                    clear_conversation(&c);
                    if (!load(&c, arg, true) && !c.s && !c.srv) { free(line); rc = CLI_EFAIL; break; }
                }
            } else {
                printf("Unknown command '%s'. Type /? for help\n", cmd);
            }
            free(line);
            continue;
        }
        char *user = dup_str(line);
        free(line);
        if (!user) { rc = cli_fail(CLI_EFAIL, "out of memory"); break; }
        turn(&c, user);
    }
    clear_conversation(&c);
    nk_free(c.msgs);
    nk_free(c.system);
    nk_free(c.name);
    json_decref(c.params);
    json_decref(c.opts);
    for (int i = 0; i < c.n_stop; i++) nk_free(c.stop[i]);
    if (c.s) nook_session_free(c.s);
    if (c.m) nook_model_free(c.m);
    return rc;
}
