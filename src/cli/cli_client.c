/*
 * cli_client.c: the CLI as a client of a running `nook serve`, as Ollama's CLI is of
 * its server: `nook run MODEL PROMPT` streams from the server when one answers on
 * NOOK_HOST (else runs in-process), `nook ps` lists what it has loaded, `nook stop
 * MODEL` unloads a model (keep_alive 0, as `ollama stop`).
 *
 * Which server: NOOK_HOST (else 127.0.0.1:11434; not OLLAMA_HOST; an unspecified bind
 * address such as 0.0.0.0 means this machine). A loopback host is probed with GET /
 * ("nook is running"; an Ollama there is not used); when nothing answers, `run` works
 * in-process.
 * A host that is not a loopback literal is another machine: the CLI is then only its
 * client (no fallback: the user asked for that machine), every request goes through
 * src/net (libcurl, the offline switch), and the prompt leaving the machine is written
 * to the egress ledger first, as the router's escalations are (docs/privacy.md).
 * NOOK_API_KEY, when set, is sent as "Authorization: Bearer".
 */
#include "cli/cli.h"
#include "net/ledger.h"
#include "net/net.h"
#include "server/server.h"

#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- finding the server --------------------------------------------------------------- */

int cli_server_find(cli_server *s) {
    memset(s, 0, sizeof *s);
    /* NOOK_HOST only: an OLLAMA_HOST naming another machine's Ollama must not make
     * `nook run` send prompts there (the server's bind address does fall back to it) */
    const char *env = getenv("NOOK_HOST");
    char host[256] = "127.0.0.1";
    int port = 11434;
    if (env && *env) {
        nook_error err = { 0 };
        if (srv_parse_host(env, host, sizeof host, &port, &err) != NOOK_OK)
            return cli_fail(CLI_EUSAGE, "NOOK_HOST: %s", err.msg);
        if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) snprintf(host, sizeof host, "127.0.0.1");
    }
    bool https = env && !strncmp(env, "https://", 8);
    s->remote = !nk_net_host_is_loopback(host);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(s->base, sizeof s->base, "%s://%s%s%s:%d", https ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
             port);
    return CLI_OK;
}

static const char *str_or(const json_t *v, const char *dflt) {
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* The Authorization header line for NOOK_API_KEY, or NULL. */
static const char *auth_header(char *buf, size_t cap) {
    const char *k = getenv("NOOK_API_KEY");
    if (!k || !*k) return NULL;
    snprintf(buf, cap, "Authorization: Bearer %s", k);
    return buf;
}

/* One request with a collected body. 0 with the response, or the transport error. */
static nook_status call(const cli_server *s, const char *method, const char *path, const char *body,
                        long timeout_ms, nk_http_resp *resp, nook_error *err) {
    char url[600], auth[512];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    const char *hdrs[3] = { "Content-Type: application/json", auth_header(auth, sizeof auth), NULL };
    nk_http_req rq = { .method = method, .url = url, .headers = hdrs, .body = body, .body_len = body ? strlen(body) : 0,
                       .connect_timeout_ms = s->remote ? 10000 : 500, .timeout_ms = timeout_ms, .allow_http = true,
                       .max_redirects = -1, .purpose = "client", .max_body = 16u << 20 };
    memset(resp, 0, sizeof *resp);
    return nk_http_do(&rq, resp, err);
}

bool cli_server_up(const cli_server *s) {
    nk_http_resp resp;
    nook_error err = { 0 };
    /* On this machine only nook's own server counts (an Ollama on 11434 does not know
     * nook's model paths); another machine's may be Ollama's. */
    bool up = call(s, "GET", "/", NULL, s->remote ? 15000 : 2000, &resp, &err) == NOOK_OK && resp.status == 200 &&
              resp.body && strstr(resp.body, s->remote ? " is running" : "nook is running");
    nk_http_resp_free(&resp);
    return up;
}

/* The server's error text from an error body ({"error": "..."}), or the status. */
static void error_text(const nk_http_resp *resp, char *buf, size_t cap) {
    json_t *j = resp->body ? json_loads(resp->body, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "error"));
    if (m) snprintf(buf, cap, "%s", m);
    else snprintf(buf, cap, "the server answered HTTP %ld", resp->status);
    json_decref(j);
}

/* MODEL as the server should read it: a local file is sent as its absolute path (the
 * server's working directory is not ours); a name, or any MODEL for another machine,
 * as given. */
static void model_arg(const cli_server *s, const char *model, char *out, size_t cap) {
    char rp[PATH_MAX];
    if (!s->remote && access(model, R_OK) == 0 && realpath(model, rp)) snprintf(out, cap, "%s", rp);
    else snprintf(out, cap, "%s", model);
}

/* ---- nook run through the server ---------------------------------------------------------- */

typedef struct stream_state {
    char *line;                 /* a partial NDJSON line */
    size_t n, cap;
    cli_obj_fn on_obj;          /* set: every line's object goes here (cli_client_stream) */
    void *obj_ud;
    bool obj_stop;              /* on_obj returned false */
    cli_answer_out out;         /* the printer nook run uses in-process too (cli_util.c) */
    bool done;
    char error[1024];
    json_t *final;              /* the done:true object */
} stream_state;

static void on_line(stream_state *st, const char *line, size_t n) {
    json_t *o = json_loadb(line, n, 0, NULL);
    if (!o) {
        snprintf(st->error, sizeof st->error, "the server sent a line that is not JSON");
        return;
    }
    if (st->on_obj) {
        const char *e = json_string_value(json_object_get(o, "error"));
        if (e) snprintf(st->error, sizeof st->error, "%s", e);
        if (json_is_true(json_object_get(o, "done"))) st->done = true;
        if (!st->on_obj(o, st->obj_ud)) st->obj_stop = true;
        json_decref(o);
        return;
    }
    const char *e = json_string_value(json_object_get(o, "error"));
    if (e) snprintf(st->error, sizeof st->error, "%s", e);
    const json_t *t = json_object_get(o, "thinking"), *r = json_object_get(o, "response");
    if (json_is_string(t)) cli_out_thinking(&st->out, json_string_value(t), json_string_length(t));
    if (json_is_string(r)) cli_out_content(&st->out, json_string_value(r), json_string_length(r));
    if (json_is_true(json_object_get(o, "done"))) {
        st->done = true;
        json_decref(st->final);
        st->final = json_incref(o);
    }
    json_decref(o);
}

static bool on_data(const void *data, size_t n, long status, void *ud) {
    (void)status;
    stream_state *st = ud;
    const char *p = data;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (st->n) on_line(st, st->line, st->n);
            st->n = 0;
            continue;
        }
        if (st->n + 1 >= st->cap) {
            size_t cap = st->cap ? st->cap * 2 : 4096;
            if (cap > (64u << 20)) return false;
            char *nl = nk_realloc(st->line, cap);
            if (!nl) return false;
            st->line = nl;
            st->cap = cap;
        }
        st->line[st->n++] = p[i];
    }
    return !st->out.failed && !st->obj_stop;
}

static volatile int g_client_cancel;
static void on_sigint(int sig) { (void)sig; g_client_cancel = 1; }

/* Writes the egress ledger line for a prompt sent to another machine (privacy.md):
 * what is sent, where, and why. */
static nook_status ledger_egress(const char *url, const char *model, const char *body, nk_ledger **l,
                                 nk_ledger_ref *ref, nook_error *err) {
    if (nk_ledger_open(NULL, l, err) != NOOK_OK) return err->code;
    nk_egress e = { .url = url, .model = model, .policy = "client", .reason = "NOOK_HOST names another machine",
                    .threshold = 0.0 / 0.0, .tokens = -1, .body = body, .body_len = strlen(body) };
    return nk_ledger_egress(*l, &e, ref, err);
}

/* A request body sent to another machine: its ledger line is written before the send
 * (nothing is sent when that fails) and completed after. On this machine: nothing. */
typedef struct remote_send {
    nk_ledger *ledger;
    nk_ledger_ref ref;
} remote_send;

static bool remote_begin(const cli_server *s, const char *url, const json_t *body, const char *text, remote_send *rs,
                         char *msg, size_t cap) {
    memset(rs, 0, sizeof *rs);
    if (!s->remote) return true;
    nook_error err = { 0 };
    const char *model = json_string_value(json_object_get(body, "model"));
    if (ledger_egress(url, model ? model : "", text, &rs->ledger, &rs->ref, &err) != NOOK_OK) {
        nk_ledger_close(rs->ledger);
        rs->ledger = NULL;
        snprintf(msg, cap, "nothing was sent: the egress ledger cannot be written: %s", err.msg);
        return false;
    }
    return true;
}

static void remote_end(remote_send *rs, const nk_http_resp *resp, const char *error) {
    if (!rs->ledger) return;
    nook_error err = { 0 };
    nk_ledger_complete(rs->ledger, &rs->ref, NULL, resp->status, NULL, 0, -1, 0.0 / 0.0, error, &err);
    nk_ledger_close(rs->ledger);
    rs->ledger = NULL;
}

int cli_client_generate(const cli_server *s, const cli_client_req *q) {
    char model[PATH_MAX + 1];
    model_arg(s, q->model, model, sizeof model);
    json_t *body = json_pack("{s:s,s:s,s:b}", "model", model, "prompt", q->prompt, "stream", 1);
    if (!body) return cli_fail(CLI_EFAIL, "out of memory");
    if (q->raw) json_object_set_new(body, "raw", json_true());
    if (q->think >= 0) json_object_set_new(body, "think", json_boolean(q->think));
    if (q->format) json_object_set(body, "format", q->format);
    if (q->options && json_object_size(q->options)) json_object_set(body, "options", q->options);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) return cli_fail(CLI_EFAIL, "out of memory");

    char url[600], auth[512];
    snprintf(url, sizeof url, "%s/api/generate", s->base);
    nk_ledger *ledger = NULL;
    nk_ledger_ref ref = { 0 };
    nook_error err = { 0 };
    if (s->remote && ledger_egress(url, model, text, &ledger, &ref, &err) != NOOK_OK) {
        nk_ledger_close(ledger);
        free(text);
        return cli_fail(CLI_EFAIL, "nothing was sent: the egress ledger cannot be written: %s", err.msg);
    }
    const char *hdrs[3] = { "Content-Type: application/json", auth_header(auth, sizeof auth), NULL };
    stream_state st = { .out = { .hide = q->hide_thinking, .ends_newline = true } };
    g_client_cancel = 0;
    void (*old)(int) = signal(SIGINT, on_sigint);
    nk_http_req rq = { .method = "POST", .url = url, .headers = hdrs, .body = text, .body_len = strlen(text),
                       .connect_timeout_ms = s->remote ? 10000 : 2000, .stall_ms = 30 * 60 * 1000, .allow_http = true,
                       .max_redirects = -1, .purpose = "client", .on_data = on_data, .ud = &st,
                       .cancel = &g_client_cancel };
    nk_http_resp resp = { 0 };
    nook_status hs = nk_http_do(&rq, &resp, &err);
    signal(SIGINT, old);
    if (st.n) on_line(&st, st.line, st.n);   /* a last line without its newline */
    if (ledger) {
        nk_ledger_complete(ledger, &ref, NULL, resp.status, NULL, 0, -1, 0.0 / 0.0,
                           hs == NOOK_OK ? NULL : err.msg, &err);
        nk_ledger_close(ledger);
    }
    free(text);
    cli_out_think_close(&st.out);
    int rc = CLI_OK;
    if (g_client_cancel) {
        rc = 130;
    } else if (hs != NOOK_OK) {
        rc = cli_fail(CLI_EFAIL, "%s: %s", s->base, err.msg);
    } else if (resp.status != 200) {
        char m[1024];
        error_text(&resp, m, sizeof m);
        rc = cli_fail(resp.status == 404 ? CLI_EFAIL : CLI_EFAIL, "%s", m);
    } else if (st.error[0]) {
        rc = cli_fail(CLI_EFAIL, "%s", st.error);
    } else if (st.out.failed) {
        rc = cli_fail(CLI_EFAIL, "run: writing to stdout failed");
    } else if (!st.done) {
        rc = cli_fail(CLI_EFAIL, "%s: the stream ended before the answer was done", s->base);
    }
    if (rc == CLI_OK && !st.out.ends_newline && isatty(STDOUT_FILENO)) putchar('\n');
    if (rc == CLI_OK && q->verbose && st.final) {
        if (!st.out.ends_newline && !isatty(STDOUT_FILENO) && cli_same_file(STDOUT_FILENO, STDERR_FILENO)) fputc('\n', stderr);
        fflush(stdout);
        fprintf(stderr, "server:               %s\n", s->base);
        fprintf(stderr, "done reason: %s\n", str_or(json_object_get(st.final, "done_reason"), "?"));
        const nook_timings t = cli_timings_json(st.final);
        cli_print_timings(&t);
    }
    fflush(stdout);
    json_decref(st.final);
    nk_free(st.line);
    nk_http_resp_free(&resp);
    return rc;
}

int cli_client_stream(const cli_server *s, const char *path, const json_t *body, cli_obj_fn fn, void *ud,
                      const volatile int *cancel, char *msg, size_t cap) {
    msg[0] = 0;
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) { snprintf(msg, cap, "out of memory"); return -1; }
    char url[600], auth[512];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    remote_send rs;
    if (!remote_begin(s, url, body, text, &rs, msg, cap)) { free(text); return -1; }
    const char *hdrs[3] = { "Content-Type: application/json", auth_header(auth, sizeof auth), NULL };
    stream_state st = { .on_obj = fn, .obj_ud = ud };
    nk_http_req rq = { .method = "POST", .url = url, .headers = hdrs, .body = text, .body_len = strlen(text),
                       .connect_timeout_ms = 2000, .stall_ms = 30 * 60 * 1000, .allow_http = true,
                       .max_redirects = -1, .purpose = "client", .on_data = on_data, .ud = &st, .cancel = cancel };
    nk_http_resp resp = { 0 };
    nook_error err = { 0 };
    nook_status hs = nk_http_do(&rq, &resp, &err);
    if (st.n && !st.obj_stop && !(cancel && *cancel)) on_line(&st, st.line, st.n);   /* a last line without its newline */
    remote_end(&rs, &resp, hs == NOOK_OK ? NULL : err.msg);
    free(text);
    int rc = 0;
    if ((cancel && *cancel) || st.obj_stop) rc = 1;
    else if (hs != NOOK_OK) { snprintf(msg, cap, "%s: %s", s->base, err.msg); rc = -1; }
    else if (resp.status != 200) { error_text(&resp, msg, cap); rc = -1; }
    else if (st.error[0]) { snprintf(msg, cap, "%s", st.error); rc = -1; }
    else if (!st.done) { snprintf(msg, cap, "%s: the stream ended before the answer was done", s->base); rc = -1; }
    nk_free(st.line);
    nk_http_resp_free(&resp);
    return rc;
}

void cli_client_model(const cli_server *s, const char *model, char *out, size_t cap) { model_arg(s, model, out, cap); }

json_t *cli_client_post(const cli_server *s, const char *path, const json_t *body, long timeout_ms, char *msg,
                        size_t cap) {
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) { snprintf(msg, cap, "out of memory"); return NULL; }
    char url[600];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    remote_send rs;
    if (!remote_begin(s, url, body, text, &rs, msg, cap)) { free(text); return NULL; }
    nk_http_resp resp;
    nook_error err = { 0 };
    json_t *j = NULL;
    nook_status hs = call(s, "POST", path, text, timeout_ms, &resp, &err);
    remote_end(&rs, &resp, hs == NOOK_OK ? NULL : err.msg);
    if (hs != NOOK_OK) snprintf(msg, cap, "%s: %s", s->base, err.msg);
    else if (resp.status != 200) error_text(&resp, msg, cap);
    else if (!(j = json_loads(resp.body ? resp.body : "", 0, NULL))) snprintf(msg, cap, "%s%s: the answer is not JSON", s->base, path);
    free(text);
    nk_http_resp_free(&resp);
    return j;
}

/* ---- nook ps / nook stop ----------------------------------------------------------------- */

static const cli_verb_info k_ps_info = {
    "ps", "",
    "List the models a running server (NOOK_HOST, default 127.0.0.1:11434) has loaded,\n"
    "as `ollama ps`: name, size, processor, context and when it unloads.",
    NULL, 0,
};

static const cli_verb_info k_stop_info = {
    "stop", "MODEL",
    "Unload MODEL from the running server (NOOK_HOST) now, as `ollama stop`.",
    NULL, 0,
};

/* The server, or an error saying none runs (ps and stop need one). */
static int need_server(cli_server *s) {
    int rc = cli_server_find(s);
    if (rc) return rc;
    if (!cli_server_up(s))
        return cli_fail(CLI_EFAIL, "could not connect to a nook server at %s (start one with 'nook serve')", s->base);
    return CLI_OK;
}

static json_t *get_ps(const cli_server *s, int *rc) {
    nk_http_resp resp;
    nook_error err = { 0 };
    json_t *j = NULL;
    if (call(s, "GET", "/api/ps", NULL, 30000, &resp, &err) != NOOK_OK) *rc = cli_fail(CLI_EFAIL, "%s: %s", s->base, err.msg);
    else if (resp.status != 200) {
        char m[1024];
        error_text(&resp, m, sizeof m);
        *rc = cli_fail(CLI_EFAIL, "%s", m);
    } else if (!(j = json_loads(resp.body, 0, NULL)) || !json_is_array(json_object_get(j, "models"))) {
        json_decref(j);
        j = NULL;
        *rc = cli_fail(CLI_EFAIL, "%s: /api/ps did not answer a list of models", s->base);
    }
    nk_http_resp_free(&resp);
    return j;
}

/* "4 minutes from now", "Forever", as Ollama's ps. */
static void fmt_until(char *buf, size_t cap, const char *expires) {
    struct tm tm = { 0 };
    if (!expires || !strptime(expires, "%Y-%m-%dT%H:%M:%S", &tm)) { snprintf(buf, cap, "?"); return; }
    int64_t d = (int64_t)timegm(&tm) - (int64_t)time(NULL);
    if (tm.tm_year + 1900 >= 2200) snprintf(buf, cap, "Forever");
    else if (d <= 0) snprintf(buf, cap, "Stopping...");
    else if (d < 60) snprintf(buf, cap, "Less than a minute from now");
    else if (d < 3600) snprintf(buf, cap, "%lld minute%s from now", (long long)(d / 60), d / 60 == 1 ? "" : "s");
    else snprintf(buf, cap, "%lld hour%s from now", (long long)(d / 3600), d / 3600 == 1 ? "" : "s");
}

int cli_ps(int argc, char **argv) {
    int npos = 0;
    int rc = cli_parse(&k_ps_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos) return cli_fail(CLI_EUSAGE, "ps takes no arguments");
    cli_server s;
    if ((rc = need_server(&s))) return rc;
    json_t *j = get_ps(&s, &rc);
    if (!j) return rc;
    printf("%-40s %-14s %-10s %-10s %-8s %s\n", "NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "models"), i, m) {
        char size[32], until[64], id[16];
        double b = (double)json_integer_value(json_object_get(m, "size"));
        if (b >= 1e9) snprintf(size, sizeof size, "%.1f GB", b / 1e9);
        else if (b >= 1e6) snprintf(size, sizeof size, "%.0f MB", b / 1e6);
        else snprintf(size, sizeof size, "%.0f KB", b / 1e3);
        fmt_until(until, sizeof until, json_string_value(json_object_get(m, "expires_at")));
        const char *dg = json_string_value(json_object_get(m, "digest"));
        if (dg && !strncmp(dg, "sha256:", 7)) dg += 7;
        snprintf(id, sizeof id, "%.12s", dg && *dg ? dg : "-");
        printf("%-40s %-14s %-10s %-10s %-8lld %s\n", str_or(json_object_get(m, "name"), "?"), id, size,
               "100% CPU", (long long)json_integer_value(json_object_get(m, "context_length")), until);
    }
    json_decref(j);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_EFAIL, "ps: writing to stdout failed");
}

int cli_stop(int argc, char **argv) {
    int npos = 0;
    int rc = cli_parse(&k_stop_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 1) return cli_fail(CLI_EUSAGE, "stop: give one MODEL (usage: nook stop MODEL)");
    cli_server s;
    if ((rc = need_server(&s))) return rc;
    char model[PATH_MAX + 1];
    model_arg(&s, argv[0], model, sizeof model);
    json_t *ps = get_ps(&s, &rc);
    if (!ps) return rc;
    bool loaded = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(ps, "models"), i, m) {
        const char *n = json_string_value(json_object_get(m, "name")), *mm = json_string_value(json_object_get(m, "model"));
        if ((n && !strcmp(n, model)) || (mm && !strcmp(mm, model))) loaded = true;
    }
    json_decref(ps);
    if (!loaded) return cli_fail(CLI_EFAIL, "couldn't find model \"%s\" to stop", argv[0]);
    json_t *b = json_pack("{s:s,s:i}", "model", model, "keep_alive", 0);
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (!body) return cli_fail(CLI_EFAIL, "out of memory");
    nk_http_resp resp;
    nook_error err = { 0 };
    nook_status hs = call(&s, "POST", "/api/generate", body, 60000, &resp, &err);
    free(body);
    if (hs != NOOK_OK) rc = cli_fail(CLI_EFAIL, "%s: %s", s.base, err.msg);
    else if (resp.status != 200) {
        char msg[1024];
        error_text(&resp, msg, sizeof msg);
        rc = cli_fail(CLI_EFAIL, "%s", msg);
    }
    nk_http_resp_free(&resp);
    return rc;
}
