/*
 * cli_convert.c: `nook quantize IN.gguf OUT.gguf TYPE` and
 * `nook import-tokenizer DIR OUT.gguf`, thin front ends over src/convert and
 * src/tokenizer/hf_import (all the work and all the checks live there).
 */
#include "cli/cli.h"
#include "convert/convert.h"
#include "tokenizer/hf_import.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static int o_q_threads;
static bool o_q_requant;

static const cli_opt k_quant_opts[] = {
    { "threads", 't', OPT_INT, &o_q_threads, 0, 1024, "N", "threads (0 = all cores)" },
    { "allow-requantize", 0, OPT_FLAG, &o_q_requant, 0, 0, NULL,
      "re-encode a model that is already quantized (loses quality twice)" },
};

/* ---- interruption: the partial OUT.tmp goes with us ----------------------------------
 * The output is written to OUT.tmp and renamed at the end (src/convert/stream.c). On
 * SIGINT, SIGTERM or SIGHUP the handler removes OUT.tmp (unlink is async-signal-safe)
 * and exits at once with 128+signal, so an interrupted quantize leaves nothing behind. */
static char g_tmp_path[4096];

static void on_quit_signal(int sig) {
    if (g_tmp_path[0]) unlink(g_tmp_path);
    static const char nl[] = "\n";
    if (isatty(STDERR_FILENO)) (void)!write(STDERR_FILENO, nl, 1);
    _exit(128 + sig);
}

/* ---- progress: a line redrawn on a terminal, nothing in a pipe ---------------------- */
typedef struct { double t0, last; } q_progress;

static void fmt_bytes(char *b, size_t cap, double v) {
    if (v >= 1e9) snprintf(b, cap, "%.2f GB", v / 1e9);
    else if (v >= 1e6) snprintf(b, cap, "%.1f MB", v / 1e6);
    else snprintf(b, cap, "%.0f kB", v / 1e3);
}

static bool on_progress(uint64_t done, uint64_t total, void *ud) {
    q_progress *p = ud;
    const double now = nk_time_ms();
    if (done < total && now - p->last < 100) return true;   /* at most ten redraws a second */
    p->last = now;
    const double secs = (now - p->t0) / 1e3, rate = secs > 0 ? (double)done / secs : 0;
    char d[32], t[32], r[32], eta[32] = "";
    fmt_bytes(d, sizeof d, (double)done);
    fmt_bytes(t, sizeof t, (double)total);
    fmt_bytes(r, sizeof r, rate);
    if (done < total && rate > 0) snprintf(eta, sizeof eta, ", %.0f s left", (double)(total - done) / rate);
    fprintf(stderr, "\rquantizing %3.0f%%  %s of %s  %s/s%s\033[K", total ? 100.0 * (double)done / (double)total : 100.0,
            d, t, r, eta);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
    return true;
}
static const cli_verb_info k_quant_info = {
    "quantize", "IN.gguf OUT.gguf TYPE",
    "Re-encode a model as TYPE (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K F16 BF16 F32)\n"
    "with llama.cpp's per-tensor mix (e.g. Q4_K_M keeps the output and some attn_v/ffn_down in Q6_K).",
    k_quant_opts, (int)NK_ARRAY_LEN(k_quant_opts),
};

int cli_quantize_cmd(int argc, char **argv) {
    int npos;
    o_q_threads = 0;
    o_q_requant = false;
    int rc = cli_parse(&k_quant_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 3) return cli_fail(CLI_EUSAGE, "quantize: expected IN.gguf OUT.gguf TYPE (see 'nook quantize --help')");
    cli_warn_threads(o_q_threads);
    if (snprintf(g_tmp_path, sizeof g_tmp_path, "%s.tmp", argv[1]) >= (int)sizeof g_tmp_path)
        return cli_fail(CLI_EUSAGE, "quantize: output path too long");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    nook_error err = { 0 };
    double t0 = nk_time_ms();
    q_progress prog = { .t0 = t0, .last = -1e9 };
    const nk_quantize_opts qo = { .allow_requantize = o_q_requant,
                                  .progress = isatty(STDERR_FILENO) ? on_progress : NULL, .ud = &prog };
    nook_status st = nk_quantize_file_ex(argv[0], argv[1], argv[2], o_q_threads, &qo, &err);
    g_tmp_path[0] = 0;
    if (st != NOOK_OK) return cli_fail(CLI_EFAIL, "quantize: %s", err.msg);
    fprintf(stderr, "quantized %s -> %s (%s) in %.1f s\n", argv[0], argv[1], argv[2],
            (nk_time_ms() - t0) / 1e3);
    return CLI_OK;
}

static const char *o_arch;

static const cli_opt k_imp_opts[] = {
    { "arch", 0, OPT_STR, &o_arch, 0, 0, "NAME", "general.architecture to write (default: detected from DIR)" },
};
static const cli_verb_info k_imp_info = {
    "import-tokenizer", "DIR OUT.gguf",
    "Convert a Hugging Face tokenizer (DIR/tokenizer.json + tokenizer_config.json) into a\n"
    "vocab-only GGUF with the tokenizer.ggml.* keys and the chat template.",
    k_imp_opts, (int)NK_ARRAY_LEN(k_imp_opts),
};

int cli_import_tokenizer_cmd(int argc, char **argv) {
    int npos;
    o_arch = NULL;
    int rc = cli_parse(&k_imp_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 2) return cli_fail(CLI_EUSAGE, "import-tokenizer: expected DIR OUT.gguf");
    nook_error err = { 0 };
    if (nk_hf_import_vocab_gguf(argv[0], o_arch, argv[1], &err) != NOOK_OK)
        return cli_fail(CLI_EFAIL, "import-tokenizer: %s", err.msg);
    return CLI_OK;
}
