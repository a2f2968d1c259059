/*
 * import_tokenizer: write a vocab-only GGUF from a Hugging Face tokenizer folder.
 *
 *   import_tokenizer DIR ARCH OUT.gguf     (ARCH "-" = detect from the folder)
 *
 * A developer tool around nk_hf_import_vocab_gguf; `nook import-tokenizer` is the
 * user-facing verb.
 */
#include "tokenizer/hf_import.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR ARCH OUT.gguf   (ARCH '-' = detect)\n", argv[0]);
        return 2;
    }
    const char *arch = strcmp(argv[2], "-") ? argv[2] : NULL;
    nook_error err = { 0 };
    double t0 = nk_time_ms();
    nook_status st = nk_hf_import_vocab_gguf(argv[1], arch, argv[3], &err);
    if (st != NOOK_OK) {
        fprintf(stderr, "import_tokenizer: %s: %s\n", nook_status_str(st), err.msg);
        return 1;
    }
    fprintf(stderr, "wrote %s in %.0f ms\n", argv[3], nk_time_ms() - t0);
    return 0;
}
