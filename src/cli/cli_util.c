/*
 * cli_util.c: option parsing, one-line errors, the log sink, stdin reading,
 * tokenization helpers and Go-style durations for the nook command.
 */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------------------- */

int cli_fail(int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) if (*c == '\n' || *c == '\r') *c = ' ';
    fflush(stdout);   /* keep the message after any text already generated */
    fprintf(stderr, "nook: %s\n", msg);
    return code;
}

static bool g_verbose;

static void log_sink(nk_log_level level, const char *msg, void *ud) {
    (void)ud;
    if (level < NK_LOG_WARN && !g_verbose) return;
    static const char *const names[] = { "debug", "info", "warning", "error" };
    fflush(stdout);
    fprintf(stderr, "nook: %s: %s\n", names[level], msg);
}

void cli_install_log(bool verbose) {
    g_verbose = verbose;
    nk_set_log(log_sink, NULL);
}

/* ---- options ------------------------------------------------------------------------ */

void cli_usage(const cli_verb_info *v, FILE *out) {
    fprintf(out, "Usage: nook %s %s\n\n%s\n", v->name, v->args, v->summary);
    if (v->n_opts == 0) return;
    fprintf(out, "\nOptions:\n");
    for (int i = 0; i < v->n_opts; i++) {
        const cli_opt *o = &v->opts[i];
        char left[64];
        int n = o->short_name ? snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name)
                              : snprintf(left, sizeof left, "      --%s", o->name);
        if (o->metavar && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->metavar);
        fprintf(out, "%-30s %s\n", left, o->help);
    }
    fprintf(out, "  -h, --help                   show this help\n");
}

static const cli_opt *find_long(const cli_verb_info *v, const char *name, size_t len) {
    for (int i = 0; i < v->n_opts; i++)
        if (strlen(v->opts[i].name) == len && memcmp(v->opts[i].name, name, len) == 0)
            return &v->opts[i];
    return NULL;
}

static const cli_opt *find_short(const cli_verb_info *v, char c) {
    for (int i = 0; i < v->n_opts; i++)
        if (v->opts[i].short_name == c) return &v->opts[i];
    return NULL;
}

/* Whole-string integer parse: no trailing junk, no overflow. */
static bool parse_i64(const char *s, long long *out) {
    if (!*s) return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || end == s) return false;
    *out = x;
    return true;
}

static bool parse_double(const char *s, double *out) {
    if (!*s) return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(x)) return false;
    *out = x;
    return true;
}

static int set_value(const cli_verb_info *v, const cli_opt *o, const char *val) {
    switch (o->kind) {
    case OPT_FLAG: *(bool *)o->dst = true; return CLI_OK;
    case OPT_SET:  *(int *)o->dst = (int)o->min; return CLI_OK;
    case OPT_STR:  *(const char **)o->dst = val; return CLI_OK;
    case OPT_INT:
    case OPT_I64: {
        long long x;
        if (!parse_i64(val, &x) || (double)x < o->min || (double)x > o->max)
            return cli_fail(CLI_EUSAGE, "%s: bad value '%s' for --%s (an integer from %.0f to %.0f)",
                            v->name, val, o->name, o->min, o->max);
        if (o->kind == OPT_INT) *(int *)o->dst = (int)x;
        else *(int64_t *)o->dst = (int64_t)x;
        return CLI_OK;
    }
    case OPT_FLOAT: {
        double x;
        if (!parse_double(val, &x) || x < o->min || x > o->max)
            return cli_fail(CLI_EUSAGE, "%s: bad value '%s' for --%s (a number from %g to %g)",
                            v->name, val, o->name, o->min, o->max);
        *(float *)o->dst = (float)x;
        return CLI_OK;
    }
    }
    return cli_fail(CLI_EUSAGE, "%s: internal error parsing --%s", v->name, o->name);
}

static bool takes_value(const cli_opt *o) { return o->kind != OPT_FLAG && o->kind != OPT_SET; }

int cli_parse(const cli_verb_info *v, int argc, char **argv, int *n_pos) {
    *n_pos = 0;
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (opts_done || a[0] != '-' || a[1] == 0) {        /* "-" alone is an argument */
            argv[(*n_pos)++] = a;   /* *n_pos < i: never overwrites what is unread */
            continue;
        }
        if (strcmp(a, "--") == 0) { opts_done = true; continue; }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(v, stdout);
            return -1;
        }
        const cli_opt *o;
        const char *val = NULL;
        char shown[64];
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(v, name, len);
            snprintf(shown, sizeof shown, "--%.*s", (int)NK_MIN(len, 40), name);
            if (eq) val = eq + 1;
        } else {
            o = find_short(v, a[1]);
            snprintf(shown, sizeof shown, "-%c", a[1]);
            if (a[2]) val = a + 2;                          /* -n40 */
        }
        if (!o)
            return cli_fail(CLI_EUSAGE, "%s: unknown option '%s' (see 'nook %s --help')",
                            v->name, shown, v->name);
        if (!takes_value(o)) {
            if (val) return cli_fail(CLI_EUSAGE, "%s: option %s takes no value", v->name, shown);
        } else if (!val) {
            if (i + 1 >= argc)
                return cli_fail(CLI_EUSAGE, "%s: option %s needs a value", v->name, shown);
            val = argv[++i];
        }
        int rc = set_value(v, o, val);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}

/* ---- input -------------------------------------------------------------------------- */

char *cli_read_stream(FILE *f, bool one_line, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = nk_malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > SIZE_MAX / 2) { nk_free(buf); return NULL; }
            char *nb = nk_realloc(buf, cap * 2);
            if (!nb) { nk_free(buf); return NULL; }
            buf = nb;
            cap *= 2;
        }
        int c = fgetc(f);
        if (c == EOF) break;
        if (one_line && c == '\n') break;
        buf[n++] = (char)c;
    }
    if (ferror(f)) { nk_free(buf); return NULL; }
    if (one_line && n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    *len = n;
    return buf;
}

int cli_kv_type(const char *verb, const char *name, nook_kv_type *out) {
    if (strcmp(name, "f16") == 0) *out = NOOK_KV_F16;
    else if (strcmp(name, "q8_0") == 0) *out = NOOK_KV_Q8_0;
    else if (strcmp(name, "f32") == 0) *out = NOOK_KV_F32;
    else if (strcmp(name, "q4_0") == 0) *out = NOOK_KV_Q4_0;
    else return cli_fail(CLI_EUSAGE, "%s: bad value '%s' for --kv-cache-type (f16, q8_0, q4_0 or f32)", verb, name);
    return CLI_OK;
}

/* ---- models and tokens ---------------------------------------------------------------- */

nook_model *cli_load_model(const char *path, int n_threads, bool no_mmap) {
    return cli_load_model_ex(path, n_threads, no_mmap, false);
}

nook_model *cli_load_model_ex(const char *path, int n_threads, bool no_mmap, bool vocab_only) {
    nook_model_params mp = nook_model_default_params();
    mp.vocab_only = vocab_only;
    mp.n_threads = n_threads;
    mp.no_mmap = no_mmap;
    nook_model *m = NULL;
    nook_error err = { 0 };
    char resolved[4096];   /* a model name resolves through the store (cli_store.c) */
    if (cli_model_path(path, resolved, sizeof resolved) != CLI_OK) return NULL;
    path = resolved;
    nook_status st = nook_model_load(path, &mp, &m, &err);
    if (st == NOOK_EIO && access(path, F_OK) != 0) {
        cli_fail_open(path, err.msg);
        return NULL;
    }
    if (st != NOOK_OK) {
        /* the engine's messages usually name the file; make sure they always do */
        if (strstr(err.msg, path)) cli_fail(CLI_EFAIL, "%s", err.msg);
        else cli_fail(CLI_EFAIL, "%s: %s", path, err.msg[0] ? err.msg : nook_status_str(st));
        return NULL;
    }
    return m;
}

int cli_tokenize(const nook_model *m, const char *text, size_t len, bool add_special,
                 bool parse_special, nook_token **out, size_t *n) {
    size_t cap = len + 8, need = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        nook_token *toks = nk_alloc_array(cap, sizeof *toks);
        if (!toks) return cli_fail(CLI_EFAIL, "out of memory tokenizing %zu bytes", len);
        nook_error err = { 0 };
        nook_status st = nook_tokenize(m, text, len, add_special, parse_special, toks, cap, &need, &err);
        if (st == NOOK_OK) { *out = toks; *n = need; return CLI_OK; }
        nk_free(toks);
        if (st != NOOK_ERANGE || need <= cap)
            return cli_fail(CLI_EFAIL, "%s", err.msg[0] ? err.msg : nook_status_str(st));
        cap = need;
    }
    return cli_fail(CLI_EFAIL, "tokenize: token count changed between attempts");
}

int cli_prompt_tokens(const nook_model *m, const char *text, size_t len, bool parse_special,
                      nook_token **out, size_t *n) {
    /* Which specials does the vocabulary add? Ask it with the empty text. */
    nook_token probe[8];
    size_t np = 0;
    nook_status st = nook_tokenize(m, "", 0, true, false, probe, NK_ARRAY_LEN(probe), &np, NULL);
    nook_token bos = nook_token_bos(m);
    bool add_bos = st == NOOK_OK && np > 0 && bos >= 0 && probe[0] == bos;

    nook_token *toks;
    size_t nt;
    int rc = cli_tokenize(m, text, len, false, parse_special, &toks, &nt);
    if (rc != CLI_OK) return rc;
    if (add_bos && !(nt > 0 && toks[0] == bos)) {
        nook_token *t2 = nk_alloc_array(nt + 1, sizeof *t2);
        if (!t2) { nk_free(toks); return cli_fail(CLI_EFAIL, "out of memory"); }
        t2[0] = bos;
        if (nt) memcpy(t2 + 1, toks, nt * sizeof *toks);
        nk_free(toks);
        toks = t2;
        nt++;
    }
    *out = toks;
    *n = nt;
    return CLI_OK;
}

bool cli_adds_space_prefix(const nook_model *m) {
    nook_token t[8];
    size_t n = 0;
    if (nook_tokenize(m, "a", 1, false, false, t, NK_ARRAY_LEN(t), &n, NULL) != NOOK_OK || n == 0)
        return false;
    char piece[64];
    int len = nook_token_to_piece(m, t[0], false, piece, sizeof piece);
    return len > 0 && piece[0] == ' ';
}

/* ---- durations ---------------------------------------------------------------------- */

/* Go's time.Duration.String: the largest unit among h/m/s for >= 1s (as "1h2m3.5s"),
 * else ms, µs or ns, with the fraction's trailing zeros removed. */
void cli_fmt_duration(char *buf, size_t cap, double ms) {
    if (!(ms > 0)) { snprintf(buf, cap, "0s"); return; }
    uint64_t ns = (uint64_t)llround(ms * 1e6);
    char frac[16];
    const char *unit;
    uint64_t whole, rem, scale;
    if (ns < 1000ull) { snprintf(buf, cap, "%lluns", (unsigned long long)ns); return; }
    if (ns < 1000000ull) { unit = "µs"; scale = 1000ull; }
    else if (ns < 1000000000ull) { unit = "ms"; scale = 1000000ull; }
    else { unit = "s"; scale = 1000000000ull; }
    uint64_t hours = 0, mins = 0;
    if (scale == 1000000000ull) {
        uint64_t secs = ns / scale;
        hours = secs / 3600;
        mins = (secs / 60) % 60;
        ns -= (hours * 3600 + mins * 60) * scale;
    }
    whole = ns / scale;
    rem = ns % scale;
    frac[0] = 0;
    if (rem) {
        int digits = scale == 1000ull ? 3 : scale == 1000000ull ? 6 : 9;
        snprintf(frac, sizeof frac, ".%0*llu", digits, (unsigned long long)rem);
        size_t l = strlen(frac);
        while (l > 1 && frac[l - 1] == '0') frac[--l] = 0;
    }
    if (hours) snprintf(buf, cap, "%lluh%llum%llu%s%s", (unsigned long long)hours,
                        (unsigned long long)mins, (unsigned long long)whole, frac, unit);
    else if (mins) snprintf(buf, cap, "%llum%llu%s%s", (unsigned long long)mins,
                            (unsigned long long)whole, frac, unit);
    else snprintf(buf, cap, "%llu%s%s", (unsigned long long)whole, frac, unit);
}

char *cli_join_args(char **argv, int from, int n, size_t *len) {
    size_t total = 1;
    for (int i = from; i < n; i++) total += strlen(argv[i]) + 1;
    char *s = nk_malloc(total);
    if (!s) return NULL;
    size_t k = 0;
    for (int i = from; i < n; i++) {
        if (i > from) s[k++] = ' ';
        size_t l = strlen(argv[i]);
        memcpy(s + k, argv[i], l);
        k += l;
    }
    s[k] = 0;
    *len = k;
    return s;
}

/* ---- the answer printer of `nook run` (cli.h) -------------------------------------------- */

void cli_out_think_close(cli_answer_out *o) {
    if (o->opened && !o->closed) {
        fputs("\n...done thinking.\n\n", stderr);
        o->closed = true;
    }
}

void cli_out_thinking(cli_answer_out *o, const char *p, size_t n) {
    if (o->hide || n == 0) return;
    if (!o->opened) {
        fflush(stdout);
        fputs("Thinking...\n", stderr);
        o->opened = true;
    }
    fwrite(p, 1, n, stderr);
}

void cli_out_content(cli_answer_out *o, const char *p, size_t n) {
    if (n == 0) return;
    cli_out_think_close(o);
    if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0) o->failed = true;
    o->ends_newline = p[n - 1] == '\n';
}

void cli_print_timings(const nook_timings *t) {
    char b[64];
    cli_fmt_duration(b, sizeof b, t->total_ns / 1e6);
    fprintf(stderr, "total duration:       %s\n", b);
    cli_fmt_duration(b, sizeof b, t->load_ns / 1e6);
    fprintf(stderr, "load duration:        %s\n", b);
    fprintf(stderr, "prompt eval count:    %d token(s)\n", t->prompt_eval_count);
    cli_fmt_duration(b, sizeof b, t->prompt_eval_ns / 1e6);
    fprintf(stderr, "prompt eval duration: %s\n", b);
    if (t->prompt_eval_ns > 0)
        fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", t->prompt_eval_count / (t->prompt_eval_ns / 1e9));
    fprintf(stderr, "eval count:           %d token(s)\n", t->eval_count);
    cli_fmt_duration(b, sizeof b, t->eval_ns / 1e6);
    fprintf(stderr, "eval duration:        %s\n", b);
    if (t->eval_ns > 0) fprintf(stderr, "eval rate:            %.2f tokens/s\n", t->eval_count / (t->eval_ns / 1e9));
}

nook_timings cli_timings_json(const json_t *o) {
#define NS(k) ((int64_t)json_integer_value(json_object_get(o, k)))
    return (nook_timings){ .total_ns = NS("total_duration"), .load_ns = NS("load_duration"),
                           .prompt_eval_ns = NS("prompt_eval_duration"), .eval_ns = NS("eval_duration"),
                           .prompt_eval_count = (int)NS("prompt_eval_count"), .eval_count = (int)NS("eval_count") };
#undef NS
}
