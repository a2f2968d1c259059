/*
 * main.c: the `nook` command: dispatch to a verb (one file each: cli_run.c,
 * cli_show.c, cli_tokenize.c), --version and help. See docs/cli.md.
 */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include <string.h>

typedef struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} verb;

static const verb k_verbs[] = {
    { "run",        cli_run,            "Generate text from a prompt (chat template applied unless --raw)" },
    { "show",       cli_show,           "Show a model's architecture, size, quantization, tokenizer, template" },
    { "tokenize",   cli_tokenize_cmd,   "Print the token ids of a text" },
    { "detokenize", cli_detokenize_cmd, "Print the text of token ids" },
    { "quantize",   cli_quantize_cmd,   "Re-encode a model with llama.cpp's quantization mixes (Q4_K_M, Q8_0, ...)" },
    { "import-tokenizer", cli_import_tokenizer_cmd, "Convert a Hugging Face tokenizer into a vocab-only GGUF" },
    { "embed",      cli_embed,          "Print embeddings of texts as JSON, as Ollama's /api/embed" },
    { "route",      cli_route,          "Calibrate the router's confidence combiner from graded examples" },
    { "audit",      cli_audit,          "Show or verify the egress ledger (what nook sent off this machine)" },
    { "bench",      cli_bench,          "Measure prompt (pp) and generation (tg) speed, llama-bench style" },
    { "specialize", cli_specialize,     "Train a classifier (a specialist) from labelled JSON lines, or evaluate one" },
    { "classify",   cli_classify,       "Label a text (or JSON lines) with a specialist" },
    { "summarize",  cli_summarize,      "Summarize a text (the editable preset nook/summarize)" },
    { "tighten",    cli_tighten,        "Rewrite a text shorter (the editable preset nook/tighten)" },
    { "name",       cli_name,           "Name a function or a draft (the editable preset nook/name)" },
    { "split",      cli_split,          "Is this sentence doing two things at once? (the specialist nook/split)" },
    { "pull",       cli_pull,           "Pull a model from a registry or Hugging Face into the store" },
    { "push",       cli_push,           "Push a model to a registry (off unless NOOK_ALLOW_PUSH=1)" },
    { "list",       cli_list,           "List the models in the store" },
    { "ls",         cli_list,           "List the models in the store (alias of list)" },
    { "rm",         cli_rm,             "Remove models from the store" },
    { "cp",         cli_cp,             "Copy a model under another name" },
    { "create",     cli_create,         "Create a model from a Modelfile" },
    { "ps",         cli_ps,             "List the models a running server has loaded" },
    { "stop",       cli_stop,           "Unload a model from the running server" },
    { "serve",      cli_serve,          "Serve Ollama's HTTP API and the OpenAI API (NOOK_HOST, default 127.0.0.1:11434)" },
};

static void usage(FILE *out) {
    fprintf(out,
            "nook: a local-first language-model runtime\n\n"
            "Usage:\n  nook COMMAND [ARGS] [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < NK_ARRAY_LEN(k_verbs); i++)
        fprintf(out, "  %-17s %s\n", k_verbs[i].name, k_verbs[i].summary);
    fprintf(out, "  %-17s %s\n", "help", "Show help for nook or for a command");
    fprintf(out,
            "\nFlags:\n  -h, --help      show this help\n  -v, --version   show the version\n\n"
            "MODEL is a model name in the store (qwen3:8b, hf.co/user/repo:Q4_K_M) or the path of a .gguf file. Use \"nook COMMAND --help\" for a command's options.\n");
}

static const verb *find_verb(const char *name) {
    for (size_t i = 0; i < NK_ARRAY_LEN(k_verbs); i++)
        if (strcmp(k_verbs[i].name, name) == 0) return &k_verbs[i];
    return NULL;
}

int main(int argc, char **argv) {
    cli_install_log(false);
    if (argc < 2) {
        usage(stderr);
        return CLI_EUSAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0 || strcmp(a, "version") == 0) {
        printf("nook version %s\n", NOOK_VERSION);
        return CLI_OK;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(a, "help") == 0) {
        if (argc < 3) { usage(stdout); return CLI_OK; }
        const verb *v = find_verb(argv[2]);
        if (!v) return cli_fail(CLI_EUSAGE, "unknown command '%s' (see 'nook help')", argv[2]);
        char *hargv[] = { argv[2], (char *)"--help", NULL };
        v->fn(2, hargv);   /* prints the usage */
        return CLI_OK;
    }
    const verb *v = find_verb(a);
    if (!v) {
        if (a[0] == '-') return cli_fail(CLI_EUSAGE, "unknown flag '%s' (see 'nook help')", a);
        return cli_fail(CLI_EUSAGE, "unknown command '%s' (see 'nook help')", a);
    }
    int rc = v->fn(argc - 1, argv + 1);
    return rc < 0 ? CLI_OK : rc;   /* -1: the verb printed its --help */
}
