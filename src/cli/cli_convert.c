/*
 * cli_convert.c: `nook quantize IN.gguf OUT.gguf TYPE` and
 * `nook import-tokenizer DIR OUT.gguf`, thin front ends over src/convert and
 * src/tokenizer/hf_import (all the work and all the checks live there).
 */
#include "cli/cli.h"
#include "convert/convert.h"
#include "tokenizer/hf_import.h"

#include <string.h>

static int o_q_threads;

static const cli_opt k_quant_opts[] = {
    { "threads", 't', OPT_INT, &o_q_threads, 0, 1024, "N", "threads (0 = all cores)" },
};
static const cli_verb_info k_quant_info = {
    "quantize", "IN.gguf OUT.gguf TYPE",
    "Re-encode a model as TYPE (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K F16 BF16 F32)\n"
    "with llama.cpp's per-tensor mix (e.g. Q4_K_M keeps the output and some attn_v/ffn_down in Q6_K).",
    k_quant_opts, (int)NK_ARRAY_LEN(k_quant_opts),
};

int cli_quantize_cmd(int argc, char **argv) {
    int npos;
    o_q_threads = 0;
    int rc = cli_parse(&k_quant_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 3) return cli_fail(CLI_EUSAGE, "quantize: expected IN.gguf OUT.gguf TYPE (see 'nook quantize --help')");
    nook_error err = { 0 };
    double t0 = nk_time_ms();
    if (nk_quantize_file(argv[0], argv[1], argv[2], o_q_threads, &err) != NOOK_OK)
        return cli_fail(CLI_EFAIL, "quantize: %s", err.msg);
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
