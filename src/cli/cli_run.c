/*
 * cli_run.c: `nook run MODEL [PROMPT...]`: tokenize the prompt (through the model's
 * chat template unless --raw), decode it, then sample and stream tokens to stdout
 * until an end-of-generation token, -n tokens, or a full context.
 *
 * Output: the generated text only (the prompt is not echoed, as in Ollama), streamed
 * through nook_detok so a multi-byte character is never split, flushed per token.
 * With --format jsonl, one JSON object per generated token instead.
 * --format json (Ollama's flag), --schema FILE.json and --grammar FILE.gbnf constrain
 * the output to JSON, to a JSON schema or to a GBNF grammar (docs/grammar.md).
 *
 * A full context is shifted (nook_session_shift: keep the first tokens, drop half of
 * the rest, as Ollama) unless --no-shift, which stops with reason "length". For
 * templates that think (Qwen3's <think>...</think>), the reasoning goes to stderr
 * between Ollama's "Thinking..." / "...done thinking." lines and the answer to stdout.
 */
#include "cli/cli.h"
#include "router/router.h"
#include "cli/cli_store.h"

#include <jansson.h>
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
    bool  raw, verbose, no_mmap, no_shift, hide_thinking, show_prompt, insecure;
    int   think;              /* -1 template default, 0 off, 1 on */
    int   keep;               /* tokens kept by a context shift, after BOS (-1: the prompt) */
    const char *format;
    const char *kv_type;
    const char *route, *task; /* router: --route local|auto|remote|ask, --task NAME */
    const char *schema, *grammar;   /* files */
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
    { "format",         0,   OPT_STR,   &o.format, 0, 0, "FMT", "text (default), jsonl (one object per token), or json (constrain the output to JSON, as Ollama)" },
    { "schema",         0,   OPT_STR,   &o.schema, 0, 0, "FILE", "constrain the output to JSON valid against the JSON schema in FILE" },
    { "grammar",        0,   OPT_STR,   &o.grammar, 0, 0, "FILE", "constrain the output to the GBNF grammar in FILE (llama.cpp's syntax)" },
    { "kv-cache-type",  0,   OPT_STR,   &o.kv_type, 0, 0, "T", "KV cache type: f16, q8_0 (half the memory), q4_0 (a quarter) or f32 [f16]" },
    { "top-logprobs",   0,   OPT_INT,   &o.top_logprobs, 0, 20, "K", "with --format jsonl: the K most likely tokens at each step [0]" },
    { "no-mmap",        0,   OPT_FLAG,  &o.no_mmap, 0, 0, NULL, "copy the model into private memory instead of mapping it" },
    { "verbose",        0,   OPT_FLAG,  &o.verbose, 0, 0, NULL, "print timings (Ollama's format) and notes to stderr" },
    { "insecure",       0,   OPT_FLAG,  &o.insecure, 0, 0, NULL, "allow plain http to the registry when MODEL is pulled first (as Ollama's --insecure)" },
    { "route",          0,   OPT_STR,   &o.route, 0, 0, "P", "routing: local (default), auto (escalate on low confidence), remote, ask; the decision goes to stderr as \"route: {...}\" (docs/privacy.md)" },
    { "task",           0,   OPT_STR,   &o.task, 0, 0, "NAME", "routing task (its pins and calibration)" },
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

/* ---- events ---------------------------------------------------------------------------- */

/* What the event callback needs: the output mode and what it saw, for --verbose. */
typedef struct run_out {
    bool jsonl;
    cli_answer_out out;         /* thinking to stderr, the answer to stdout (cli_util.c) */
    int64_t shift_at[8];
    int n_shift, shift_keep, shift_discard;
    nook_done_reason reason;
    bool context_full;
    nook_timings t;
    nook_status status;
    char error[512];
} run_out;

/* One token's object: id, its text, whether it is reasoning (when the template thinks),
 * its log-probability and the top alternatives. */
static void emit_jsonl(run_out *r, const nook_event *ev) {
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_integer(ev->id));
    json_object_set_new(obj, "text", json_stringn(ev->piece, ev->piece_len));
    if (ev->split_thinking) json_object_set_new(obj, "thinking", json_boolean(ev->in_thinking));
    json_object_set_new(obj, "logprob", json_real(ev->logprob));
    json_t *arr = json_array();
    for (int i = 0; i < ev->n_top; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "id", json_integer(ev->top[i].id));
        json_object_set_new(e, "logprob", json_real(ev->top[i].logprob));
        json_array_append_new(arr, e);
    }
    json_object_set_new(obj, "top_logprobs", arr);
    int rc = json_dumpf(obj, stdout, JSON_COMPACT | JSON_REAL_PRECISION(8));
    json_decref(obj);
    if (rc != 0 || putchar('\n') == EOF || fflush(stdout) != 0) r->out.failed = true;
}

static bool on_event(const nook_event *ev, void *ud) {
    run_out *r = ud;
    switch (ev->kind) {
    case NOOK_EVENT_TOKEN:
    case NOOK_EVENT_TEXT:
        if (r->jsonl) {
            if (ev->kind == NOOK_EVENT_TOKEN) emit_jsonl(r, ev);
        } else {
            cli_out_thinking(&r->out, ev->thinking, ev->thinking_len);
            cli_out_content(&r->out, ev->content, ev->content_len);
        }
        break;
    case NOOK_EVENT_SHIFT:
        if (r->n_shift < (int)NK_ARRAY_LEN(r->shift_at)) r->shift_at[r->n_shift] = ev->index;
        r->n_shift++;
        r->shift_keep = ev->shift_keep;
        r->shift_discard = ev->shift_discard;
        break;
    case NOOK_EVENT_DONE:
        if (r->jsonl) {
            if (ev->piece_len) {
                /* the stream ended inside a character: its bytes, as U+FFFD, in a last object */
                json_t *obj = json_pack("{s:s%}", "text", ev->piece, ev->piece_len);
                if (obj) { json_dumpf(obj, stdout, JSON_COMPACT); putchar('\n'); json_decref(obj); }
            }
        } else {
            cli_out_thinking(&r->out, ev->thinking, ev->thinking_len);
            cli_out_content(&r->out, ev->content, ev->content_len);
            cli_out_think_close(&r->out);
        }
        r->reason = ev->done_reason;
        r->context_full = ev->context_full;
        r->t = *ev->timings;
        r->status = ev->status;
        if (ev->error) snprintf(r->error, sizeof r->error, "%s", ev->error);
        break;
    }
    return !r->out.failed && !g_interrupted;
}

/* The generation parameters the options ask for. */
static void gen_params(nook_gen_params *gp_out, bool jsonl) {
    *gp_out = nook_gen_default_params();
    gp_out->sampler.temperature = o.temperature;
    gp_out->sampler.top_k = o.top_k;
    gp_out->sampler.top_p = o.top_p;
    gp_out->sampler.min_p = o.min_p;
    gp_out->sampler.repeat_penalty = o.repeat_penalty;
    gp_out->sampler.repeat_last_n = o.repeat_last_n;   /* -1: the context */
    /* -1 (the default) picks a seed from the clock; 0 is a fixed seed like any other */
    gp_out->sampler.seed = o.seed < 0 ? NOOK_SEED_RANDOM : (uint64_t)o.seed;
    gp_out->num_predict = o.num_predict;
    gp_out->num_keep = o.keep;
    gp_out->no_shift = o.no_shift;
    gp_out->logprobs = jsonl;
    gp_out->top_logprobs = o.top_logprobs;
}

/* ---- the verb ------------------------------------------------------------------------- */

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

/* The prompt: arguments, else stdin (see below). NULL when it cannot be read. */
static char *read_prompt(char **argv, int npos, size_t *plen) {
    /* the prompt: arguments, else stdin; piped stdin and arguments are joined (stdin
     * first, then a space and the arguments, as Ollama's `cat draft.md | ollama run
     * MODEL "summarize this"`) */
    char *prompt;
    if (npos > 1 && isatty(STDIN_FILENO)) prompt = cli_join_args(argv, 1, npos, plen);
    else if (npos > 1) {
        size_t il = 0, al = 0;
        char *in = cli_read_stream(stdin, false, &il);
        char *args = cli_join_args(argv, 1, npos, &al);
        prompt = NULL;
        if (in && args) {
            prompt = nk_malloc(il + al + 2);
            if (prompt) {
                memcpy(prompt, in, il);
                size_t k = il;
                if (il) prompt[k++] = ' ';
                memcpy(prompt + k, args, al + 1);
                *plen = k + al;
            }
        }
        nk_free(in);
        nk_free(args);
    } else if (isatty(STDIN_FILENO)) {
        fputs(">>> ", stderr);
        fflush(stderr);
        prompt = cli_read_stream(stdin, true, plen);
    } else prompt = cli_read_stream(stdin, false, plen);
    return prompt;
}

/* Flags that only work in-process (a server has no field for them), or NULL. */
static const char *local_only_flag(bool jsonl) {
    return jsonl ? "--format jsonl" : o.show_prompt ? "--show-prompt" : o.grammar ? "--grammar" : o.route ? "--route"
         : o.task ? "--task" : o.no_shift ? "--no-shift" : o.no_mmap ? "--no-mmap"
         : strcmp(o.kv_type, "f16") ? "--kv-cache-type" : o.threads ? "--threads" : o.top_logprobs ? "--top-logprobs" : NULL;
}

/* The options the command line changed, as Ollama's options object (new; for a server,
 * which applies the model's Modelfile PARAMETERs under them). */
static json_t *changed_options(const run_opts *defaults) {
    json_t *opts = json_object();
    if (o.num_predict != defaults->num_predict) json_object_set_new(opts, "num_predict", json_integer(o.num_predict));
    if (o.temperature != defaults->temperature) json_object_set_new(opts, "temperature", json_real(o.temperature));
    if (o.top_k != defaults->top_k) json_object_set_new(opts, "top_k", json_integer(o.top_k));
    if (o.top_p != defaults->top_p) json_object_set_new(opts, "top_p", json_real(o.top_p));
    if (o.min_p != defaults->min_p) json_object_set_new(opts, "min_p", json_real(o.min_p));
    if (o.repeat_penalty != defaults->repeat_penalty) json_object_set_new(opts, "repeat_penalty", json_real(o.repeat_penalty));
    if (o.repeat_last_n != defaults->repeat_last_n) json_object_set_new(opts, "repeat_last_n", json_integer(o.repeat_last_n));
    if (o.seed >= 0) json_object_set_new(opts, "seed", json_integer(o.seed));
    if (o.ctx > 0) json_object_set_new(opts, "num_ctx", json_integer(o.ctx));
    if (o.keep != defaults->keep) json_object_set_new(opts, "num_keep", json_integer(o.keep));
    return opts;
}

/* `nook run` through a running server (cli_client.c): the options the command line
 * changed go as Ollama's options. */
static int run_on_server(const cli_server *srv, const run_opts *defaults, char **argv, int npos, bool json_out) {
    size_t plen = 0;
    char *prompt = read_prompt(argv, npos, &plen);
    if (!prompt) return cli_fail(CLI_EFAIL, "run: cannot read the prompt");
    if (strlen(prompt) != plen) { nk_free(prompt); return cli_fail(CLI_EFAIL, "run: the prompt contains a NUL byte"); }
    json_t *opts = changed_options(defaults), *format = NULL;
    int rc = CLI_OK;
    if (json_out) format = json_string("json");
    else if (o.schema) {
        json_error_t je;
        if (!(format = json_load_file(o.schema, 0, &je))) rc = cli_fail(CLI_EFAIL, "%s: %s (line %d)", o.schema, je.text, je.line);
    }
    if (rc == CLI_OK) {
        cli_client_req q = { .model = argv[0], .prompt = prompt, .raw = o.raw, .hide_thinking = o.hide_thinking,
                             .verbose = o.verbose, .think = o.think, .format = format, .options = opts };
        rc = cli_client_generate(srv, &q);
    }
    json_decref(opts);
    json_decref(format);
    nk_free(prompt);
    return rc;
}

int cli_run(int argc, char **argv) {
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
    bool jsonl = strcmp(o.format, "jsonl") == 0, json_out = strcmp(o.format, "json") == 0;
    if (!jsonl && !json_out && strcmp(o.format, "text") != 0)
        return cli_fail(CLI_EUSAGE, "run: bad value '%s' for --format (text, jsonl or json)", o.format);
    if ((json_out ? 1 : 0) + (o.schema ? 1 : 0) + (o.grammar ? 1 : 0) > 1)
        return cli_fail(CLI_EUSAGE, "run: give one of --format json, --schema and --grammar");
    nook_kv_type kv_type;
    if (cli_kv_type("run", o.kv_type, &kv_type) != CLI_OK) return CLI_EUSAGE;
    if (o.repeat_penalty <= 0.0f)
        return cli_fail(CLI_EUSAGE, "run: bad value for --repeat-penalty (must be above 0)");
    if (o.top_logprobs > 0 && !jsonl)
        return cli_fail(CLI_EUSAGE, "run: --top-logprobs needs --format jsonl");
    cli_install_log(o.verbose);

    /* A running server (NOOK_HOST; cli_client.c): the answer streams from it, as with
     * Ollama's CLI; none on this machine: in-process, below. Another machine's server
     * is always used (no fallback). The interactive conversation talks to a server on
     * this machine too (cli_chat.c, its server backend); in-process-only flags stay here. */
    cli_server srv;
    if ((rc = cli_server_find(&srv))) return rc;
    bool interactive = npos == 1 && isatty(STDIN_FILENO) && !o.show_prompt && !jsonl;
    const char *local_flag = local_only_flag(jsonl);
    const char *remote_refused = local_flag ? local_flag
                                 : interactive && o.schema ? "--schema in the interactive conversation"
                                 : interactive && json_out ? "--format json in the interactive conversation" : NULL;
    if (srv.remote && remote_refused)
        return cli_fail(CLI_EUSAGE, "run: %s works in-process only, not through the server at %s (NOOK_HOST)",
                        remote_refused, srv.base);
    if (!local_flag && !interactive && (srv.remote || cli_server_up(&srv)))
        return run_on_server(&srv, &defaults, argv, npos, json_out);
    if (!local_flag && interactive && !o.schema && !json_out && (srv.remote || cli_server_up(&srv))) {
        json_t *opts = changed_options(&defaults);
        nook_gen_params gp;
        gen_params(&gp, false);
        cli_chat_cfg cc = { .model = argv[0], .name = argv[0], .think = o.think, .verbose = o.verbose, .gp = gp,
                            .sp = nook_session_default_params(), .server = &srv, .options = opts };
        cc.sp.n_ctx = o.ctx;
        rc = cli_chat(&cc);
        json_decref(opts);
        return rc;
    }

    /* MODEL: a path, or a name in the store (pulled first when missing, as Ollama) */
    cli_store_set_insecure(o.insecure);
    rc = cli_resolve_model(argv[0], true, &ref);
    if (rc) return rc;
    if (ref.params) {
        o = defaults;
        apply_params(ref.params);
        cli_parse(&k_info, argc, argv_copy, &npos);   /* the command line wins */
        argv = argv_copy;
    }

    /* a terminal and no prompt: the interactive conversation (cli_chat.c) */
    if (npos == 1 && isatty(STDIN_FILENO) && !o.show_prompt && !jsonl) {
        cli_chat_cfg cc = { .model = ref.path, .name = ref.name, .params = ref.params, .messages = ref.messages,
                            .system = ref.system, .template_src = ref.template_jinja,
                            .think = o.think, .threads = o.threads, .verbose = o.verbose, .no_mmap = o.no_mmap };
        gen_params(&cc.gp, false);
        cc.sp = nook_session_default_params();
        cc.sp.n_ctx = o.ctx;
        cc.sp.n_threads = o.threads;
        cc.sp.kv_type = kv_type;
        rc = cli_chat(&cc);
        nk_model_ref_free(&ref);
        return rc;
    }

    size_t plen = 0;
    char *prompt = read_prompt(argv, npos, &plen);
    if (!prompt) { nk_model_ref_free(&ref); return cli_fail(CLI_EFAIL, "run: cannot read the prompt"); }
    if (strlen(prompt) != plen) {
        nk_free(prompt);
        nk_model_ref_free(&ref);
        return cli_fail(CLI_EFAIL, "run: the prompt contains a NUL byte");
    }

    nook_model *m = NULL;
    nook_session *s = NULL;
    nk_router *router = NULL;
    nk_route route;
    bool route_made = false;
    char *rendered = NULL, *msgs_json = NULL, *constraint_text = NULL;
    const char **stops = NULL;
    nook_error err = { 0 };
    if (o.schema || o.grammar) {   /* read before the model loads: a typo fails fast */
        size_t cl;
        if (nk_read_file(o.schema ? o.schema : o.grammar, &constraint_text, &cl, &err) != NOOK_OK) {
            rc = cli_fail(CLI_EFAIL, "run: %s", err.msg);
            goto done;
        }
        if (strlen(constraint_text) != cl) {
            rc = cli_fail(CLI_EFAIL, "run: %s contains a NUL byte", o.schema ? o.schema : o.grammar);
            goto done;
        }
    }

    double t_load0 = nk_time_ms();
    m = cli_load_model(ref.path, o.threads, o.no_mmap);
    if (!m) { rc = CLI_EFAIL; goto done; }
    double load_ms = nk_time_ms() - t_load0;
    cli_warn_threads(o.threads);
    cli_warn_ctx(m, o.ctx);

    /* one user message through the chat template, or plain completion (--raw) */
    nook_prompt pr = nook_prompt_default();
    pr.text = prompt;
    pr.raw = o.raw;
    pr.think = o.think;
    /* the store's Modelfile settings: SYSTEM, TEMPLATE (translated to Jinja), MESSAGE history */
    pr.system = ref.system;
    pr.template_src = ref.template_jinja;
    if (ref.messages && !o.raw && (ref.template_jinja || nook_model_chat_template(m))) {
        json_t *all = json_deep_copy(ref.messages);
        if (all && ref.system) json_array_insert_new(all, 0, json_pack("{s:s, s:s}", "role", "system", "content", ref.system));
        if (all) json_array_append_new(all, json_pack("{s:s, s:s}", "role", "user", "content", prompt));
        msgs_json = all ? json_dumps(all, JSON_COMPACT) : NULL;
        json_decref(all);
        if (!msgs_json) { rc = cli_fail(CLI_EFAIL, "out of memory"); goto done; }
        pr.messages_json = msgs_json;
    }
    if (o.show_prompt) {
        size_t rl = 0;
        if (nook_prompt_render(m, &pr, &rendered, &rl, &err) != NOOK_OK) {
            rc = cli_fail(CLI_EFAIL, "%s", err.msg);
            goto done;
        }
        if (fwrite(rendered, 1, rl, stdout) != rl || fflush(stdout) != 0)
            rc = cli_fail(CLI_EFAIL, "run: writing to stdout failed");
        goto done;
    }

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
    const int n_ctx = nook_session_n_ctx(s);

    nook_gen_params gp;
    gen_params(&gp, jsonl);
    gp.load_ns = (int64_t)(load_ms * 1e6);
    if (json_out) gp.format = "json";
    else if (o.schema) gp.format = constraint_text;
    else if (o.grammar) gp.grammar = constraint_text;
    json_t *jstop = ref.params ? json_object_get(ref.params, "stop") : NULL;
    if (json_array_size(jstop)) {
        stops = nk_calloc(json_array_size(jstop), sizeof *stops);
        if (!stops) { rc = cli_fail(CLI_EFAIL, "out of memory"); goto done; }
        for (size_t i = 0; i < json_array_size(jstop); i++)
            if (json_string_value(json_array_get(jstop, i)) && *json_string_value(json_array_get(jstop, i)))
                stops[gp.n_stop++] = json_string_value(json_array_get(jstop, i));
        gp.stop = stops;
    }

    run_out r = { .jsonl = jsonl, .out = { .hide = o.hide_thinking, .ends_newline = true } };
    signal(SIGINT, on_sigint);
    /* the router: local requests run nook_generate as they are; auto/ask hold the local
     * answer back until the decision; remote answers come back whole (router.h) */
    nk_route_req rq = { .policy = NK_ROUTE_UNSET, .model_policy = NK_ROUTE_UNSET, .task = o.task };
    /* the model's own policy (Modelfile PARAMETER route auto) */
    if (ref.params) rq.model_policy = nk_route_policy_parse(json_string_value(json_object_get(ref.params, "route")));
    if (o.route && (rq.policy = nk_route_policy_parse(o.route)) == NK_ROUTE_UNSET) {
        rc = cli_fail(CLI_EUSAGE, "run: bad value '%s' for --route (local, auto, remote or ask)", o.route);
        goto done;
    }
    if (nk_router_open(NULL, &router, &err) != NOOK_OK) { rc = cli_fail(CLI_EFAIL, "%s", err.msg); goto done; }
    char *answer = NULL;
    nook_status st = nk_route_generate(router, s, &pr, &gp, &rq, on_event, &r, &route, &answer, &err);
    route_made = true;
    if (st == NOOK_OK && (o.route || o.verbose)) {
        json_t *rj = nk_route_json(&route);
        char *line = rj ? json_dumps(rj, JSON_COMPACT) : NULL;
        /* on its own line, like the timings, when stdout and stderr are one pipe */
        if (line && !jsonl && !r.out.ends_newline && cli_same_file(STDOUT_FILENO, STDERR_FILENO)) {
            fflush(stdout);
            fputc('\n', stderr);
            r.out.ends_newline = true;
        }
        if (line) fprintf(stderr, "route: %s\n", line);
        free(line);
        json_decref(rj);
    }
    if (st == NOOK_OK && answer) {   /* held back or remote: the whole answer at once */
        r.reason = NOOK_DONE_STOP;
        cli_out_content(&r.out, answer, strlen(answer));
        nk_free(answer);
    }
    if (st != NOOK_OK && r.reason == NOOK_DONE_NONE) {   /* refused before generating */
        bool constraint_err = strncmp(err.msg, "grammar", 7) == 0 || strncmp(err.msg, "schema", 6) == 0 ||
                              strncmp(err.msg, "pattern", 7) == 0;
        if (constraint_err && (o.schema || o.grammar)) rc = cli_fail(CLI_EFAIL, "%s: %s", o.schema ? o.schema : o.grammar, err.msg);
        else if (st == NOOK_ERANGE) rc = cli_fail(CLI_EFAIL, "%s; raise --ctx", err.msg);
        else rc = cli_fail(CLI_EFAIL, "%s", err.msg);
        goto done;
    }
    if (r.out.failed) { rc = cli_fail(CLI_EFAIL, "run: writing to stdout failed"); goto done; }
    if (r.reason == NOOK_DONE_ERROR) { rc = cli_fail(CLI_EFAIL, "%s", r.error); goto done; }
    if (!jsonl && !r.out.ends_newline && isatty(STDOUT_FILENO)) putchar('\n');
    if (fflush(stdout) != 0) { rc = cli_fail(CLI_EFAIL, "run: writing to stdout failed"); goto done; }
    if (o.verbose) {
        /* the timings start on their own line even when stdout and stderr are one pipe */
        if (!jsonl && !r.out.ends_newline && !isatty(STDOUT_FILENO) && cli_same_file(STDOUT_FILENO, STDERR_FILENO))
            fputc('\n', stderr);
        for (int i = 0; i < r.n_shift && i < (int)NK_ARRAY_LEN(r.shift_at); i++)
            fprintf(stderr, "context shift at token %lld (kept %d, discarded %d)\n", (long long)r.shift_at[i],
                    r.shift_keep, r.shift_discard);
        if (r.n_shift > (int)NK_ARRAY_LEN(r.shift_at))
            fprintf(stderr, "... and %d more context shifts\n", r.n_shift - (int)NK_ARRAY_LEN(r.shift_at));
        if (r.context_full) fprintf(stderr, "context full (%d tokens)\n", n_ctx);
        if (g_interrupted) fprintf(stderr, "interrupted\n");
        else fprintf(stderr, "done reason: %s\n", nook_done_reason_str(r.reason));
        cli_print_timings(&r.t);
    }
    if (g_interrupted) rc = 130;

done:
    if (route_made) nk_route_clear(&route);
    nk_router_free(router);
    free(msgs_json);
    nk_free(stops);
    nk_model_ref_free(&ref);
    nk_free(rendered);
    nk_free(constraint_text);
    nk_free(prompt);
    if (s) nook_session_free(s);
    if (m) nook_model_free(m);
    return rc;
}
