/*
 * cli_store.c: the store's verbs (pull, push, list, rm, cp, create) and what other verbs use
 * to turn MODEL into a GGUF path (cli_resolve_model). All logic lives in src/store; this
 * file parses options and prints, Ollama-style: a progress line per layer with bytes,
 * rate and ETA on a terminal, nothing in a pipe.
 */
#include "cli/cli.h"
#include "cli/cli_store.h"
#include "net/net.h"

#include <math.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void fmt_bytes(char *buf, size_t cap, double n) {
    /* Ollama prints decimal units ("2.0 GB") */
    if (n >= 1e9) snprintf(buf, cap, "%.1f GB", n / 1e9);
    else if (n >= 1e6) snprintf(buf, cap, "%.0f MB", n / 1e6);
    else if (n >= 1e3) snprintf(buf, cap, "%.0f KB", n / 1e3);
    else snprintf(buf, cap, "%.0f B", n);
}

/* ---- progress ---- */

typedef struct progress {
    bool tty;
    char last_status[80];
    double t0;
    uint64_t c0;
    double last_draw;
} progress;

static bool on_progress(const nk_pull_progress *p, void *ud) {
    progress *g = ud;
    if (!g->tty) return true;
    bool same = strcmp(p->status, g->last_status) == 0;
    double now = nk_time_ms();
    if (!same) {
        if (g->last_status[0]) fputc('\n', stderr);
        snprintf(g->last_status, sizeof g->last_status, "%s", p->status);
        g->t0 = now;
        g->c0 = p->completed;
    } else if (now - g->last_draw < 100 && p->completed < p->total) {
        return true;
    }
    g->last_draw = now;
    if (p->total == 0) {
        fprintf(stderr, "\r%s\033[K", p->status);
    } else {
        double frac = (double)p->completed / (double)p->total;
        int width = 20, fill = (int)(frac * width);
        char bar[3 * 20 + 1] = "";
        for (int i = 0; i < width; i++) strcat(bar, i < fill ? "\u2588" : " ");
        char done[32], total[32], rate[40] = "", eta[40] = "";
        fmt_bytes(done, sizeof done, (double)p->completed);
        fmt_bytes(total, sizeof total, (double)p->total);
        double secs = (now - g->t0) / 1000.0;
        if (secs > 0.5 && p->completed > g->c0 && p->completed < p->total) {
            double r = (double)(p->completed - g->c0) / secs;
            char rb[32];
            fmt_bytes(rb, sizeof rb, r);
            snprintf(rate, sizeof rate, "%s/s", rb);
            double left = (double)(p->total - p->completed) / r;
            if (left >= 60) snprintf(eta, sizeof eta, "%dm%02ds", (int)(left / 60), (int)fmod(left, 60));
            else snprintf(eta, sizeof eta, "%ds", (int)ceil(left));
        }
        if (p->completed < p->total)
            fprintf(stderr, "\r%s: %3d%% \u2595%s\u258f %s/%s  %s  %s\033[K", p->status, (int)(frac * 100), bar, done, total, rate, eta);
        else
            fprintf(stderr, "\r%s: 100%% \u2595%s\u258f %s\033[K", p->status, bar, total);
    }
    if (strcmp(p->status, "success") == 0) { fputc('\n', stderr); g->last_status[0] = 0; }
    fflush(stderr);
    return true;
}

static nk_store *open_store(void) {
    nk_store *s = NULL;
    nook_error err = { 0 };
    if (nk_store_open(NULL, &s, &err) != NOOK_OK) {
        cli_fail(CLI_EFAIL, "model store: %s", err.msg);
        return NULL;
    }
    return s;
}

static bool g_insecure;
void cli_store_set_insecure(bool on) { g_insecure = on; }

static int do_pull(nk_store *s, const char *name) {
    progress g = { .tty = isatty(STDERR_FILENO) };
    nk_pull_opts po = { .insecure = g_insecure, .progress = on_progress, .ud = &g };
    nook_error err = { 0 };
    nook_status st = nk_pull(s, name, &po, &err);
    if (g.tty && g.last_status[0]) fputc('\n', stderr);
    if (st) return cli_fail(CLI_EFAIL, "pull %s: %s", name, err.msg);
    return CLI_OK;
}

/* A string that names an existing file, or looks like a path (has a '/', ends in .gguf),
 * is left to the loader, which names the file in its errors. */
static bool path_like(const char *what) {
    return access(what, F_OK) == 0 || strchr(what, '/') == what || strstr(what, ".gguf") ||
           strncmp(what, "./", 2) == 0 || strncmp(what, "../", 3) == 0;
}

int cli_resolve_model(const char *what, bool pull_missing, nk_model_ref *ref) {
    memset(ref, 0, sizeof *ref);
    if (path_like(what)) {
        snprintf(ref->path, sizeof ref->path, "%s", what);
        snprintf(ref->name, sizeof ref->name, "%s", what);
        return CLI_OK;
    }
    nk_store *s = open_store();
    if (!s) return CLI_EFAIL;
    nook_error err = { 0 };
    nook_status st = nk_model_resolve(s, what, ref, &err);
    if (st == NOOK_ENOTFOUND && pull_missing) {
        nk_name n;
        if (nk_name_parse(what, &n, NULL) == NOOK_OK && !strstr(what, ".gguf")) {
            if (isatty(STDERR_FILENO)) fprintf(stderr, "pulling %s\n", what);
            progress g = { .tty = isatty(STDERR_FILENO) };
            nk_pull_opts po = { .insecure = g_insecure, .progress = on_progress, .ud = &g };
            nook_error perr = { 0 };
            nook_status pst = nk_pull(s, what, &po, &perr);
            if (g.tty && g.last_status[0]) fputc('\n', stderr);
            if (pst) {
                nk_store_free(s);
                return cli_fail(CLI_EFAIL, "model '%s' is not in the store and pulling it failed: %s "
                                "(check the name, see 'nook list' for local models, or give the path of a .gguf file)",
                                what, perr.msg);
            }
            st = nk_model_resolve(s, what, ref, &err);
        }
    }
    nk_store_free(s);
    if (st == NOOK_ENOTFOUND)
        return cli_fail(CLI_EFAIL, "%s (see 'nook list' for local models; 'nook pull NAME' fetches one; or give the path of a .gguf file)", err.msg);
    if (st) return cli_fail(CLI_EFAIL, "%s", err.msg);
    if (ref->template_note) nk_log(NK_LOG_WARN, "%s: %s; using the model's own chat template", ref->name, ref->template_note);
    return CLI_OK;
}

int cli_model_path(const char *what, char *path, size_t cap) {
    if (path_like(what)) {
        snprintf(path, cap, "%s", what);
        return CLI_OK;
    }
    nk_model_ref ref;
    int rc = cli_resolve_model(what, false, &ref);
    if (rc) return rc;
    snprintf(path, cap, "%s", ref.path);
    nk_model_ref_free(&ref);
    return CLI_OK;
}

/* ---- verbs ---- */

static bool o_ollama;
static void apply_store_flags(void) {
    if (o_ollama) setenv("NOOK_OLLAMA_STORE", "1", 1);
}

static const cli_opt k_pull_opts[] = {
    { "insecure", 0, OPT_FLAG, &g_insecure, 0, 0, NULL, "allow plain http to the registry (as Ollama's --insecure)" },
    { "ollama-store", 0, OPT_FLAG, &o_ollama, 0, 0, NULL, "use Ollama's store (~/.ollama/models) in place" },
};
static const cli_verb_info k_pull = { "pull", "NAME",
    "Pull a model from a registry (registry.ollama.ai by default, host[:port]/ns/model:tag for another,\n"
    "hf.co/user/repo:QUANT from Hugging Face) into the store ($NOOK_MODELS, default ~/.nook/models).\n"
    "An interrupted pull resumes. NOOK_REGISTRY_MIRROR replaces registry.ollama.ai.",
    k_pull_opts, (int)NK_ARRAY_LEN(k_pull_opts) };

int cli_pull(int argc, char **argv) {
    int npos;
    int rc = cli_parse(&k_pull, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 1) return cli_fail(CLI_EUSAGE, "pull: expected one NAME (usage: nook pull NAME)");
    apply_store_flags();
    nk_store *s = open_store();
    if (!s) return CLI_EFAIL;
    rc = do_pull(s, argv[0]);
    nk_store_free(s);
    return rc;
}

static const cli_opt k_push_opts[] = {
    { "insecure", 0, OPT_FLAG, &g_insecure, 0, 0, NULL, "allow plain http to the registry (as Ollama's --insecure)" },
};
static const cli_verb_info k_push = { "push", "NAME",
    "Push a model from the store to its registry (host[:port]/namespace/model:tag), Ollama's protocol.\n"
    "Off unless NOOK_ALLOW_PUSH=1: a push uploads the model's files, its settings included.",
    k_push_opts, (int)NK_ARRAY_LEN(k_push_opts) };

int cli_push(int argc, char **argv) {
    int npos;
    int rc = cli_parse(&k_push, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 1) return cli_fail(CLI_EUSAGE, "push: expected one NAME (usage: nook push NAME)");
    nk_store *s = open_store();
    if (!s) return CLI_EFAIL;
    progress g = { .tty = isatty(STDERR_FILENO) };
    nk_pull_opts po = { .insecure = g_insecure, .progress = on_progress, .ud = &g };
    nook_error err = { 0 };
    nook_status st = nk_push(s, argv[0], &po, &err);
    if (g.tty && g.last_status[0]) fputc('\n', stderr);
    nk_store_free(s);
    if (st) return cli_fail(CLI_EFAIL, "%s", err.msg);
    return CLI_OK;
}

static const cli_opt k_list_opts[] = {
    { "ollama-store", 0, OPT_FLAG, &o_ollama, 0, 0, NULL, "list Ollama's store (~/.ollama/models) in place" },
};
static const cli_verb_info k_list = { "list", "", "List the models in the store (NAME, ID, SIZE, MODIFIED).",
    k_list_opts, (int)NK_ARRAY_LEN(k_list_opts) };

static void fmt_ago(char *buf, size_t cap, int64_t t) {
    int64_t d = (int64_t)time(NULL) - t;
    if (d < 60) snprintf(buf, cap, "%s", d <= 1 ? "Less than a second ago" : "Less than a minute ago");
    else if (d < 3600) snprintf(buf, cap, "%lld minute%s ago", (long long)(d / 60), d / 60 == 1 ? "" : "s");
    else if (d < 86400) snprintf(buf, cap, "%lld hour%s ago", (long long)(d / 3600), d / 3600 == 1 ? "" : "s");
    else snprintf(buf, cap, "%lld day%s ago", (long long)(d / 86400), d / 86400 == 1 ? "" : "s");
}

int cli_list(int argc, char **argv) {
    int npos;
    int rc = cli_parse(&k_list, argc, argv, &npos);
    if (rc) return rc;
    if (npos) return cli_fail(CLI_EUSAGE, "list takes no arguments");
    apply_store_flags();
    nk_store *s = open_store();
    if (!s) return CLI_EFAIL;
    nk_store_entry *v = NULL;
    int n = 0;
    nook_error err = { 0 };
    nk_store_list(s, &v, &n, &err);
    int w = 4;
    for (int i = 0; i < n; i++) w = NK_MAX(w, (int)strlen(v[i].name));
    printf("%-*s    %-12s    %-8s    %s\n", w, "NAME", "ID", "SIZE", "MODIFIED");
    for (int i = 0; i < n; i++) {
        char size[32], ago[48];
        fmt_bytes(size, sizeof size, (double)v[i].size);
        fmt_ago(ago, sizeof ago, v[i].modified);
        printf("%-*s    %.12s    %-8s    %s\n", w, v[i].name, v[i].digest + 7, size, ago);
    }
    nk_free(v);
    nk_store_free(s);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_EFAIL, "list: writing to stdout failed");
}

static const cli_opt k_rm_opts[] = {
    { "ollama-store", 0, OPT_FLAG, &o_ollama, 0, 0, NULL, "act on Ollama's store (~/.ollama/models)" },
};
static const cli_verb_info k_rm = { "rm", "MODEL [MODEL...]",
    "Remove models from the store, then the blobs no other model uses.", k_rm_opts, (int)NK_ARRAY_LEN(k_rm_opts) };

int cli_rm(int argc, char **argv) {
    int npos;
    int rc = cli_parse(&k_rm, argc, argv, &npos);
    if (rc) return rc;
    if (npos < 1) return cli_fail(CLI_EUSAGE, "rm: missing MODEL (usage: nook rm MODEL [MODEL...])");
    apply_store_flags();
    nk_store *s = open_store();
    if (!s) return CLI_EFAIL;
    for (int i = 0; i < npos && rc == CLI_OK; i++) {
        nk_name n;
        nook_error err = { 0 };
        if (nk_name_parse(argv[i], &n, &err) || nk_store_remove(s, &n, &err)) rc = cli_fail(CLI_EFAIL, "rm: %s", err.msg);
        else printf("deleted '%s'\n", argv[i]);
    }
    nk_store_free(s);
    return rc;
}

static const cli_verb_info k_cp = { "cp", "SOURCE DESTINATION", "Copy a model under another name (no weights are copied).",
    k_rm_opts, (int)NK_ARRAY_LEN(k_rm_opts) };

int cli_cp(int argc, char **argv) {
    int npos;
    int rc = cli_parse(&k_cp, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 2) return cli_fail(CLI_EUSAGE, "cp: expected SOURCE and DESTINATION");
    apply_store_flags();
    nk_store *s = open_store();
    if (!s) return CLI_EFAIL;
    nk_name a, b;
    nook_error err = { 0 };
    if (nk_name_parse(argv[0], &a, &err) || nk_name_parse(argv[1], &b, &err) || nk_store_copy(s, &a, &b, &err))
        rc = cli_fail(CLI_EFAIL, "cp: %s", err.msg);
    else printf("copied '%s' to '%s'\n", argv[0], argv[1]);
    nk_store_free(s);
    return rc;
}

static const char *o_file, *o_quant;
static int o_threads;
static const cli_opt k_create_opts[] = {
    { "file", 'f', OPT_STR, &o_file, 0, 0, "PATH", "the Modelfile [./Modelfile]" },
    { "quantize", 'q', OPT_STR, &o_quant, 0, 0, "TYPE", "quantize the model (q4_K_M, q4_K_S, q8_0, ...)" },
    { "threads", 't', OPT_INT, &o_threads, 0, 1024, "N", "quantizer threads (0: all cores)" },
    { "ollama-store", 0, OPT_FLAG, &o_ollama, 0, 0, NULL, "create in Ollama's store (~/.ollama/models)" },
};
static const cli_verb_info k_create = { "create", "NAME [-f Modelfile]",
    "Create a model from a Modelfile (FROM a model name, a .gguf file or a folder; PARAMETER, TEMPLATE,\n"
    "SYSTEM, MESSAGE, LICENSE, REQUIRES). ADAPTER is not supported yet.",
    k_create_opts, (int)NK_ARRAY_LEN(k_create_opts) };

/* create: the pull's progress lines (a bar with rate and ETA while quantizing or copying,
 * on a terminal only), and Ctrl-C / SIGTERM stopping it through the progress callback, so
 * that nk_create removes its partial files itself (nothing is left behind). */
static volatile sig_atomic_t g_create_stop;
static void on_create_signal(int sig) { g_create_stop = sig; }

static bool on_create_step(const nk_pull_progress *p, void *ud) {
    on_progress(p, ud);
    return !g_create_stop;
}

int cli_create(int argc, char **argv) {
    int npos;
    o_file = NULL;
    o_quant = NULL;
    int rc = cli_parse(&k_create, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 1) return cli_fail(CLI_EUSAGE, "create: expected one NAME (usage: nook create NAME -f Modelfile)");
    apply_store_flags();
    const char *file = o_file ? o_file : "Modelfile";
    char *text = NULL;
    size_t len = 0;
    nook_error err = { 0 };
    if (nk_read_file(file, &text, &len, &err)) return cli_fail(CLI_EFAIL, "create: %s", err.msg);
    nk_modelfile mf;
    if (nk_modelfile_parse(text, len, &mf, &err)) { nk_free(text); return cli_fail(CLI_EFAIL, "create: %s: %s", file, err.msg); }
    nk_free(text);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    char *sl = strrchr(dir, '/');
    if (sl) *sl = 0; else snprintf(dir, sizeof dir, ".");
    nk_store *s = open_store();
    if (!s) { nk_modelfile_free(&mf); return CLI_EFAIL; }
    progress g = { .tty = isatty(STDERR_FILENO) };
    nk_create_opts co = { .base_dir = dir, .quantize = o_quant, .n_threads = o_threads, .progress = on_create_step, .ud = &g };
    struct sigaction sa = { 0 }, old_int, old_term;
    sa.sa_handler = on_create_signal;
    sigemptyset(&sa.sa_mask);
    g_create_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    nook_status cst = nk_create(s, argv[0], &mf, &co, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (g.tty && g.last_status[0]) fputc('\n', stderr);
    if (cst == NOOK_EABORTED && g_create_stop) {   /* 130 / 143, as the shell's own for a signal */
        cli_fail(CLI_EFAIL, "create %s: interrupted; nothing was left behind", argv[0]);
        rc = 128 + g_create_stop;
    }
    else if (cst) rc = cli_fail(CLI_EFAIL, "create %s: %s", argv[0], err.msg);
    nk_modelfile_free(&mf);
    nk_store_free(s);
    return rc;
}
