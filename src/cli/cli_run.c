/*
 * cli_run.c: `nook run MODEL [PROMPT...]`: tokenize the prompt (through the model's
 * chat template unless --raw), decode it, then sample and stream tokens to stdout
 * until an end-of-generation token, -n tokens, or a full context.
 *
 * Output: the generated text only (the prompt is not echoed, as in Ollama), streamed
 * through nook_detok so a multi-byte character is never split, flushed per token.
 * With --format jsonl, one JSON object per generated token instead.
 *
 * A full context is shifted (nook_session_shift: keep the first tokens, drop half of
 * the rest, as Ollama) unless --no-shift, which stops with reason "length". For
 * templates that think (Qwen3's <think>...</think>), the reasoning goes to stderr
 * between Ollama's "Thinking..." / "...done thinking." lines and the answer to stdout.
 */
#include "cli/cli.h"
#include "chat/chat.h"
#include "cli/cli_store.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct run_opts {
    int   num_predict;
    float temperature, top_p, min_p, repeat_penalty;
    int   top_k, repeat_last_n, threads, ctx, top_logprobs;
    int64_t seed;
    bool  raw, verbose, no_mmap, no_shift, hide_thinking, show_prompt;
    int   think;              /* -1 template default, 0 off, 1 on */
    int   keep;               /* tokens kept by a context shift, after BOS (-1: the prompt) */
    const char *format;
    const char *kv_type;
} run_opts;

static run_opts o;

static const cli_opt k_opts[] = {
    { "num-predict",    'n', OPT_INT,   &o.num_predict, -1, 2147483647, "N", "tokens to generate (-1: until end of generation, at most 10 contexts)" },
    { "temperature",    0,   OPT_FLOAT, &o.temperature, 0, 100, "X", "sampling temperature (0: greedy) [0.8]" },
    { "top-k",          0,   OPT_INT,   &o.top_k, 0, 2147483647, "N", "keep the N most likely tokens (0: all) [40]" },
    { "top-p",          0,   OPT_FLOAT, &o.top_p, 0, 1, "X", "keep the smallest set with probability >= X (1: off) [0.9]" },
    { "min-p",          0,   OPT_FLOAT, &o.min_p, 0, 1, "X", "drop tokens below X times the best one's probability [0]" },
    { "repeat-penalty", 0,   OPT_FLOAT, &o.repeat_penalty, 0, 100, "X", "penalize tokens seen in the last repeat-last-n (1: off) [1.0]" },
    { "repeat-last-n",  0,   OPT_INT,   &o.repeat_last_n, -1, 2147483647, "N", "history the penalty looks at (0: off, -1: context) [64]" },
    { "seed",           0,   OPT_I64,   &o.seed, -1, 9223372036854775807.0, "N", "random seed (-1: from the clock) [-1]" },
    { "threads",        't', OPT_INT,   &o.threads, 0, 1024, "N", "worker threads (0: all cores) [0]" },
    { "ctx",            'c', OPT_INT,   &o.ctx, 0, 1 << 24, "N", "context length in tokens (0: min(trained, 4096)) [0]" },
    { "raw",            0,   OPT_FLAG,  &o.raw, 0, 0, NULL, "plain completion: no chat template, control tokens in the prompt parsed" },
    { "think",          0,   OPT_SET,   &o.think, 1, 0, NULL, "enable thinking (templates that support it)" },
    { "no-think",       0,   OPT_SET,   &o.think, 0, 0, NULL, "disable thinking (templates that support it)" },
    { "hidethinking",   0,   OPT_FLAG,  &o.hide_thinking, 0, 0, NULL, "do not print the thinking text (templates that think)" },
    { "keep",           0,   OPT_INT,   &o.keep, -1, 2147483647, "N", "tokens after BOS a context shift keeps (-1: the whole prompt) [4]" },
    { "no-shift",       0,   OPT_FLAG,  &o.no_shift, 0, 0, NULL, "stop with reason 'length' at a full context instead of shifting it" },
    { "show-prompt",    0,   OPT_FLAG,  &o.show_prompt, 0, 0, NULL, "print the prompt as it goes to the tokenizer (template applied) and exit" },
    { "format",         0,   OPT_STR,   &o.format, 0, 0, "FMT", "output format: text (default) or jsonl (one object per token)" },
    { "kv-cache-type",  0,   OPT_STR,   &o.kv_type, 0, 0, "T", "KV cache type: f16, q8_0 (half the memory) or f32 [f16]" },
    { "top-logprobs",   0,   OPT_INT,   &o.top_logprobs, 0, 20, "K", "with --format jsonl: the K most likely tokens at each step [0]" },
    { "no-mmap",        0,   OPT_FLAG,  &o.no_mmap, 0, 0, NULL, "copy the model into private memory instead of mapping it" },
    { "verbose",        0,   OPT_FLAG,  &o.verbose, 0, 0, NULL, "print timings (Ollama's format) and notes to stderr" },
};
static const cli_verb_info k_info = {
    "run", "MODEL [PROMPT...]",
    "Generate text. MODEL is a .gguf file. The prompt is the arguments joined by spaces, else\n"
    "stdin (all of it when piped, one line from a terminal). It is rendered through the\n"
    "model's chat template as one user message unless --raw or the model has none.\n"
    "Only the generated text is printed; the prompt is not echoed.",
    k_opts, (int)NK_ARRAY_LEN(k_opts),
};

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

/* ---- prompt --------------------------------------------------------------------------- */

/* The text of a special token (for the template's bos_token / eos_token), or "". */
static json_t *token_text(const nook_model *m, nook_token t) {
    char buf[256];
    int n = t >= 0 ? nook_token_to_piece(m, t, true, buf, sizeof buf) : 0;
    if (n < 0 || (size_t)n >= sizeof buf) n = 0;
    json_t *s = json_stringn(buf, (size_t)n);
    return s ? s : json_string("");
}

/* Renders [{"role":"user","content":prompt}] with add_generation_prompt through the
 * model's template. *out is nk_malloc'd. */
static int render_chat(const nook_model *m, const char *tmpl, const nk_model_ref *ref, const char *prompt,
                       size_t len, char **out, size_t *out_len) {
    json_t *msgs = json_pack("[{s:s, s:s%}]", "role", "user", "content", prompt, len);
    /* the store's Modelfile settings come first: SYSTEM, then MESSAGE history */
    if (msgs && ref->messages) {
        json_t *all = json_deep_copy(ref->messages);
        if (all) { json_array_extend(all, msgs); json_decref(msgs); msgs = all; }
    }
    if (msgs && ref->system) json_array_insert_new(msgs, 0, json_pack("{s:s, s:s}", "role", "system", "content", ref->system));
    json_t *kw = json_pack("{s:b}", "add_generation_prompt", 1);
    if (!msgs || !kw) {
        json_decref(msgs);
        json_decref(kw);
        return cli_fail(CLI_EFAIL, "the prompt is not valid UTF-8 (or out of memory)");
    }
    json_object_set_new(kw, "bos_token", token_text(m, nook_token_bos(m)));
    json_object_set_new(kw, "eos_token", token_text(m, nook_token_eos(m)));
    if (o.think >= 0) json_object_set_new(kw, "enable_thinking", json_boolean(o.think));
    char warning[256] = "";
    nook_error err = { 0 };
    nook_status st = nk_chat_render_or_fallback(tmpl, NULL, msgs, NULL, kw, NULL, out, warning,
                                                sizeof warning, &err);
    json_decref(msgs);
    json_decref(kw);
    if (st != NOOK_OK) return cli_fail(CLI_EFAIL, "chat template: %s", err.msg);
    if (warning[0]) nk_log(NK_LOG_WARN, "chat template: %s", warning);
    *out_len = strlen(*out);
    return CLI_OK;
}

/* ---- jsonl ---------------------------------------------------------------------------- */

typedef struct top_entry { nook_token id; float logit; } top_entry;

/* log(sum(exp(logits))) over the non-NaN logits: the log-softmax normalizer. */
static double log_sum_exp(const float *l, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) if (l[i] > mx) mx = l[i];
    if (mx == -INFINITY || !isfinite(mx)) return mx;
    double s = 0;
    for (int i = 0; i < n; i++) if (!isnan(l[i])) s += exp((double)l[i] - mx);
    return mx + log(s);
}

/* The k largest logits, best first, ties to the lower id; top[] has room for k. */
static int top_k_logits(const float *l, int n, top_entry *top, int k) {
    int have = 0;
    if (k <= 0) return 0;   /* (top may be NULL then) */
    for (int i = 0; i < n; i++) {
        float v = l[i];
        if (isnan(v)) continue;
        if (have == k && !(v > top[k - 1].logit)) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && v > top[j - 1].logit) { top[j] = top[j - 1]; j--; }
        top[j] = (top_entry){ i, v };
    }
    return have;
}

/* One token's object. thinking: -1 no field (the template does not think), else whether
 * the token belongs to the reasoning (the <think> and </think> tags included). */
static int emit_jsonl(const float *logits, int n_vocab, nook_token tok, const char *text,
                      size_t text_len, top_entry *top, int k, int thinking) {
    double lse = log_sum_exp(logits, n_vocab);
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_integer(tok));
    json_object_set_new(obj, "text", json_stringn(text, text_len));
    if (thinking >= 0) json_object_set_new(obj, "thinking", json_boolean(thinking));
    json_object_set_new(obj, "logprob", json_real((double)logits[tok] - lse));
    json_t *arr = json_array();
    int nt = top_k_logits(logits, n_vocab, top, k);
    for (int i = 0; i < nt; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "id", json_integer(top[i].id));
        json_object_set_new(e, "logprob", json_real((double)top[i].logit - lse));
        json_array_append_new(arr, e);
    }
    json_object_set_new(obj, "top_logprobs", arr);
    int rc = json_dumpf(obj, stdout, JSON_COMPACT | JSON_REAL_PRECISION(8));
    json_decref(obj);
    if (rc != 0 || putchar('\n') == EOF || fflush(stdout) != 0)
        return cli_fail(CLI_EFAIL, "run: writing to stdout failed");
    return CLI_OK;
}

/* ---- thinking ------------------------------------------------------------------------- */

/* Whether a template thinks: Qwen3's writes <think> blocks and reads enable_thinking. */
static bool template_thinks(const char *tmpl) {
    return tmpl && (strstr(tmpl, "<think>") || strstr(tmpl, "enable_thinking"));
}

/* Whether the prompt leaves a <think> block open (a template or a --raw prompt that ends
 * with "<think>\n"): then the model's first words are already reasoning. */
static bool prompt_opens_think(const char *text, size_t len) {
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r')) len--;
    static const char tag[] = "<think>";
    return len >= sizeof tag - 1 && memcmp(text + len - (sizeof tag - 1), tag, sizeof tag - 1) == 0;
}

/* The text-mode sinks of nk_think_splitter: reasoning to stderr between Ollama's CLI
 * lines "Thinking...\n" and "...done thinking.\n\n" (nothing with --hidethinking), the
 * answer to stdout. A failed stdout write is remembered and reported by the caller. */
typedef struct think_out {
    bool hide, opened, closed, failed, ends_newline;
} think_out;

static void think_close(think_out *t) {
    if (t->opened && !t->closed) {
        fputs("\n...done thinking.\n\n", stderr);
        t->closed = true;
    }
}

static void on_think(const char *p, size_t n, void *ud) {
    think_out *t = ud;
    if (t->hide || n == 0) return;
    if (!t->opened) {
        fflush(stdout);
        fputs("Thinking...\n", stderr);
        t->opened = true;
    }
    fwrite(p, 1, n, stderr);
}

static void on_content(const char *p, size_t n, void *ud) {
    think_out *t = ud;
    if (n == 0) return;
    think_close(t);
    if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0) t->failed = true;
    t->ends_newline = p[n - 1] == '\n';
}

/* ---- verbose timings (Ollama's api.Metrics.Summary) ------------------------------------- */

static void print_metrics(double total_ms, double load_ms, int p_count, double p_ms,
                          int e_count, double e_ms) {
    char b[64];
    cli_fmt_duration(b, sizeof b, total_ms);
    fprintf(stderr, "total duration:       %s\n", b);
    cli_fmt_duration(b, sizeof b, load_ms);
    fprintf(stderr, "load duration:        %s\n", b);
    fprintf(stderr, "prompt eval count:    %d token(s)\n", p_count);
    cli_fmt_duration(b, sizeof b, p_ms);
    fprintf(stderr, "prompt eval duration: %s\n", b);
    if (p_ms > 0) fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", p_count / (p_ms / 1e3));
    fprintf(stderr, "eval count:           %d token(s)\n", e_count);
    cli_fmt_duration(b, sizeof b, e_ms);
    fprintf(stderr, "eval duration:        %s\n", b);
    if (e_ms > 0) fprintf(stderr, "eval rate:            %.2f tokens/s\n", e_count / (e_ms / 1e3));
}

/* ---- the verb ------------------------------------------------------------------------- */

/* The shift's kept prefix: Ollama passes num_keep (default 4) to llama.cpp's --keep,
 * which keeps BOS plus that many; -1 keeps the whole prompt. llama.cpp caps it at
 * n_ctx - 4 so a shift always frees room. */
static int shift_keep(const nook_model *m, const nook_token *toks, size_t n_tok, int n_ctx) {
    int64_t keep = o.keep < 0 ? (int64_t)n_tok : (int64_t)o.keep + (toks[0] == nook_token_bos(m) ? 1 : 0);
    if (keep > n_ctx - 4) keep = n_ctx - 4;
    return keep < 0 ? 0 : (int)keep;
}

/* A Modelfile's PARAMETERs (the store's params layer) as defaults under the command
 * line's options (Ollama's precedence: defaults < Modelfile < request). */
static void apply_params(const json_t *p) {
    json_t *v;
    if ((v = json_object_get(p, "temperature")) && json_is_number(v)) o.temperature = (float)json_number_value(v);
    if ((v = json_object_get(p, "top_p")) && json_is_number(v)) o.top_p = (float)json_number_value(v);
    if ((v = json_object_get(p, "min_p")) && json_is_number(v)) o.min_p = (float)json_number_value(v);
    if ((v = json_object_get(p, "repeat_penalty")) && json_is_number(v)) o.repeat_penalty = (float)json_number_value(v);
    if ((v = json_object_get(p, "top_k")) && json_is_integer(v)) o.top_k = (int)json_integer_value(v);
    if ((v = json_object_get(p, "repeat_last_n")) && json_is_integer(v)) o.repeat_last_n = (int)json_integer_value(v);
    if ((v = json_object_get(p, "num_predict")) && json_is_integer(v)) o.num_predict = (int)json_integer_value(v);
    if ((v = json_object_get(p, "num_ctx")) && json_is_integer(v)) o.ctx = (int)json_integer_value(v);
    if ((v = json_object_get(p, "num_keep")) && json_is_integer(v)) o.keep = (int)json_integer_value(v);
    if ((v = json_object_get(p, "seed")) && json_is_integer(v)) o.seed = json_integer_value(v);
}

int cli_run(int argc, char **argv) {
    double t_start = nk_time_ms();
    char *argv_copy[256];   /* the arguments as given, for a second parse over a Modelfile's defaults */
    if (argc >= (int)NK_ARRAY_LEN(argv_copy)) return cli_fail(CLI_EUSAGE, "run: too many arguments");
    memcpy(argv_copy, argv, (size_t)argc * sizeof *argv);
    argv_copy[argc] = NULL;
    nook_sampler_params dp = nook_sampler_default_params();
    o = (run_opts){
        .num_predict = -1, .temperature = dp.temperature, .top_p = dp.top_p, .min_p = dp.min_p,
        .repeat_penalty = dp.repeat_penalty, .top_k = dp.top_k, .repeat_last_n = dp.repeat_last_n,
        .threads = 0, .ctx = 0, .top_logprobs = 0, .seed = -1, .think = -1, .keep = 4, .format = "text", .kv_type = "f16",
    };
    int npos;
    run_opts defaults = o;
    nk_model_ref ref = { 0 };
    int rc = cli_parse(&k_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos < 1) return cli_fail(CLI_EUSAGE, "run: missing MODEL (usage: nook run MODEL [PROMPT...])");
    bool jsonl = strcmp(o.format, "jsonl") == 0;
    if (!jsonl && strcmp(o.format, "text") != 0)
        return cli_fail(CLI_EUSAGE, "run: bad value '%s' for --format (text or jsonl)", o.format);
    nook_kv_type kv_type;
    if (cli_kv_type("run", o.kv_type, &kv_type) != CLI_OK) return CLI_EUSAGE;
    if (o.repeat_penalty <= 0.0f)
        return cli_fail(CLI_EUSAGE, "run: bad value for --repeat-penalty (must be above 0)");
    if (o.top_logprobs > 0 && !jsonl)
        return cli_fail(CLI_EUSAGE, "run: --top-logprobs needs --format jsonl");
    cli_install_log(o.verbose);

    /* MODEL: a path, or a name in the store (pulled first when missing, as Ollama) */
    rc = cli_resolve_model(argv[0], true, &ref);
    if (rc) return rc;
    if (ref.params) {
        o = defaults;
        apply_params(ref.params);
        cli_parse(&k_info, argc, argv_copy, &npos);   /* the command line wins */
        argv = argv_copy;
    }

    /* the prompt: arguments, else stdin */
    size_t plen = 0;
    char *prompt;
    if (npos > 1) prompt = cli_join_args(argv, 1, npos, &plen);
    else if (isatty(STDIN_FILENO)) {
        fputs(">>> ", stderr);
        fflush(stderr);
        prompt = cli_read_stream(stdin, true, &plen);
    } else prompt = cli_read_stream(stdin, false, &plen);
    if (!prompt) { nk_model_ref_free(&ref); return cli_fail(CLI_EFAIL, "run: cannot read the prompt"); }

    nook_model *m = NULL;
    nook_session *s = NULL;
    nook_sampler *smp = NULL;
    nook_token *toks = NULL, *hist = NULL;
    top_entry *top = NULL;
    char *rendered = NULL;

    double t_load0 = nk_time_ms();
    m = cli_load_model(ref.path, o.threads, o.no_mmap);
    if (!m) { rc = CLI_EFAIL; goto done; }
    double load_ms = nk_time_ms() - t_load0;
    nook_error err = { 0 };

    /* the text for the tokenizer: through the chat template, or plain completion */
    const char *tmpl = ref.template_jinja ? ref.template_jinja : nook_model_chat_template(m);
    const char *text = prompt;
    size_t text_len = plen, n_tok = 0;
    bool parse_special = o.raw;   /* --raw: the caller wrote the whole prompt, template tokens included */
    if (!o.raw && tmpl && tmpl[0]) {
        rc = render_chat(m, tmpl, &ref, prompt, plen, &rendered, &text_len);
        if (rc != CLI_OK) goto done;
        text = rendered;
        parse_special = true;
    } else if (!o.raw) nk_log(NK_LOG_INFO, "the model has no chat template: plain completion");
    if (o.show_prompt) {
        if (fwrite(text, 1, text_len, stdout) != text_len || fflush(stdout) != 0)
            rc = cli_fail(CLI_EFAIL, "run: writing to stdout failed");
        goto done;
    }
    rc = cli_prompt_tokens(m, text, text_len, parse_special, &toks, &n_tok);
    if (rc != CLI_OK) goto done;
    if (n_tok == 0) { rc = cli_fail(CLI_EFAIL, "run: the prompt is empty"); goto done; }

    double t_sess0 = nk_time_ms();
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = o.ctx;
    sp.n_threads = o.threads;
    sp.kv_type = kv_type;
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) {
        rc = cli_fail(CLI_EFAIL, "%s", err.msg);
        goto done;
    }
    load_ms += nk_time_ms() - t_sess0;
    const int n_ctx = nook_session_n_ctx(s), n_vocab = nook_model_n_vocab(m);
    /* a prompt that does not fit is an error, never silently cut (Ollama's shift:false) */
    if (n_tok > (size_t)n_ctx) {
        rc = cli_fail(CLI_EFAIL, "the prompt is %zu tokens, longer than the context (%d); raise --ctx",
                      n_tok, n_ctx);
        goto done;
    }

    nook_sampler_params smp_p = dp;
    smp_p.temperature = o.temperature;
    smp_p.top_k = o.top_k;
    smp_p.top_p = o.top_p;
    smp_p.min_p = o.min_p;
    smp_p.repeat_penalty = o.repeat_penalty;
    smp_p.repeat_last_n = o.repeat_last_n < 0 ? n_ctx : o.repeat_last_n;
    /* the API's seed 0 means "random"; the command line's 0 is a fixed seed like any other */
    smp_p.seed = o.seed < 0 ? 0 : o.seed == 0 ? 0x9E3779B97F4A7C15ull : (uint64_t)o.seed;
    if (nook_sampler_new(&smp_p, n_vocab, &smp, &err) != NOOK_OK) {
        rc = cli_fail(CLI_EFAIL, "%s", err.msg);
        goto done;
    }
    for (size_t i = 0; i < n_tok; i++) nook_sampler_accept(smp, toks[i]);  /* penalties see the prompt */
    if (o.top_logprobs > 0) {
        top = nk_alloc_array((size_t)o.top_logprobs, sizeof *top);
        if (!top) { rc = cli_fail(CLI_EFAIL, "out of memory"); goto done; }
    }
    /* the tokens in the cache, plus one sampled and not yet decoded: what a shift keeps */
    hist = nk_alloc_array((size_t)n_ctx + 1, sizeof *hist);
    if (!hist) { rc = cli_fail(CLI_EFAIL, "out of memory"); goto done; }
    memcpy(hist, toks, n_tok * sizeof *hist);
    int n_hist = (int)n_tok;
    const int keep = shift_keep(m, toks, n_tok, n_ctx);
    /* -1 with shifting could run forever: Ollama bounds it at 10 contexts (boundedNumPredict) */
    const int64_t limit = o.num_predict >= 0 ? o.num_predict : o.no_shift ? INT64_MAX : 10 * (int64_t)n_ctx;

    /* thinking: split when the template thinks and thinking is not switched off */
    const bool thinks = tmpl && template_thinks(tmpl) && o.think != 0;
    nk_think_splitter tsp;
    nk_think_init(&tsp, thinks && prompt_opens_think(text, text_len));
    think_out tout = { .hide = o.hide_thinking, .ends_newline = true };

    signal(SIGINT, on_sigint);
    double t_prompt0 = nk_time_ms();
    if (nook_session_decode(s, toks, (int)n_tok, NULL, &err) != NOOK_OK) {
        rc = cli_fail(CLI_EFAIL, "%s", err.msg);
        goto done;
    }
    double t_prompt1 = nk_time_ms();

    nook_detok d;
    nook_detok_init(&d, m, false);
    char piece[1024];
    int64_t n_gen = 0;
    const char *reason = "length";
    bool ctx_full = false;
    /* where shifts happened, for --verbose (printed after the text, not inside it) */
    int64_t shift_at[8];
    int n_shift = 0, shift_discard = 0;
    while (n_gen < limit && !g_interrupted) {
        const float *logits = nook_session_logits(s);
        nook_token tok = nook_sampler_sample(smp, logits);
        if (nook_token_is_eog(m, tok)) { reason = "stop"; break; }
        size_t pl = nook_detok_push(&d, tok, piece, sizeof piece);
        if (jsonl) {
            int thinking = -1;
            if (thinks) {
                const int before = tsp.state;
                nk_think_feed(&tsp, piece, pl, NULL, NULL, NULL);
                thinking = before == 1 || tsp.state == 1;   /* 1: inside <think> (chat.h) */
            }
            rc = emit_jsonl(logits, n_vocab, tok, piece, pl, top, o.top_logprobs, thinking);
            if (rc != CLI_OK) goto done;
        } else if (pl && thinks) {
            nk_think_feed(&tsp, piece, pl, on_think, on_content, &tout);
        } else if (pl) {
            on_content(piece, pl, &tout);
        }
        if (tout.failed) { rc = cli_fail(CLI_EFAIL, "run: writing to stdout failed"); goto done; }
        n_gen++;
        if (n_gen >= limit) break;
        if (nook_session_n_past(s) >= n_ctx) {
            if (o.no_shift) { ctx_full = true; break; }
            /* Ollama / llama.cpp: keep the first tokens, drop half of the rest */
            const int discard = NK_MAX(1, (nook_session_n_past(s) - keep) / 2);
            hist[n_hist++] = tok;
            if (nook_session_shift(s, hist, &n_hist, keep, discard, &err) != NOOK_OK) {
                rc = cli_fail(CLI_EFAIL, "context shift: %s", err.msg);
                goto done;
            }
            if (n_shift < (int)NK_ARRAY_LEN(shift_at)) shift_at[n_shift] = n_gen;
            n_shift++;
            shift_discard = discard;
            continue;
        }
        if (nook_session_decode(s, &tok, 1, NULL, &err) != NOOK_OK) {
            rc = cli_fail(CLI_EFAIL, "%s", err.msg);
            goto done;
        }
        hist[n_hist++] = tok;
    }
    size_t tl = nook_detok_flush(&d, piece, sizeof piece);
    if (tl && jsonl) {
        /* the stream ended inside a character: its bytes, as U+FFFD, in a last object */
        json_t *obj = json_pack("{s:s%}", "text", piece, tl);
        if (obj) { json_dumpf(obj, stdout, JSON_COMPACT); putchar('\n'); json_decref(obj); }
    } else if (tl && thinks) {
        nk_think_feed(&tsp, piece, tl, on_think, on_content, &tout);
    } else if (tl) {
        on_content(piece, tl, &tout);
    }
    if (!jsonl && thinks) {
        nk_think_finish(&tsp, on_think, on_content, &tout);
        think_close(&tout);
    }
    if (!jsonl && !tout.ends_newline && isatty(STDOUT_FILENO)) putchar('\n');
    if (tout.failed || fflush(stdout) != 0) { rc = cli_fail(CLI_EFAIL, "run: writing to stdout failed"); goto done; }
    double t_end = nk_time_ms();
    if (o.verbose) {
        for (int i = 0; i < n_shift && i < (int)NK_ARRAY_LEN(shift_at); i++)
            fprintf(stderr, "context shift at token %lld (kept %d, discarded %d)\n", (long long)shift_at[i], keep,
                    shift_discard);
        if (n_shift > (int)NK_ARRAY_LEN(shift_at))
            fprintf(stderr, "... and %d more context shifts\n", n_shift - (int)NK_ARRAY_LEN(shift_at));
        if (ctx_full) fprintf(stderr, "context full (%d tokens)\n", n_ctx);
        if (g_interrupted) fprintf(stderr, "interrupted\n");
        else fprintf(stderr, "done reason: %s\n", reason);
        print_metrics(t_end - t_start, load_ms, (int)n_tok, t_prompt1 - t_prompt0, (int)n_gen,
                      t_end - t_prompt1);
    }
    if (g_interrupted) rc = 130;

done:
    nk_free(hist);
    nk_free(top);
    nk_free(toks);
    nk_free(rendered);
    nk_free(prompt);
    if (smp) nook_sampler_free(smp);
    if (s) nook_session_free(s);
    if (m) nook_model_free(m);
    nk_model_ref_free(&ref);
    return rc;
}
