/*
 * cli_hints.c: warnings about settings that work but are probably not what the user
 * meant (issue 15): more threads than cores (they contend and run slower than one per
 * core), a context longer than the model was trained on (quality falls past it). One
 * line each on stderr, "nook: warning: ...", naming the flag, the value and what to do.
 */
#include "cli/cli.h"

#include <sys/stat.h>
#include <unistd.h>

void cli_warn_threads(int threads) {
    const int cores = nk_n_cores();
    if (threads > cores)
        fprintf(stderr, "nook: warning: --threads %d exceeds the %d cores of this machine; threads will contend "
                "(use --threads %d or 0 for all cores)\n", threads, cores, cores);
}

void cli_warn_ctx(const nook_model *m, int ctx) {
    const int trained = m ? nook_model_n_ctx_train(m) : 0;
    if (trained > 0 && ctx > trained)
        fprintf(stderr, "nook: warning: --ctx %d exceeds the %d tokens this model was trained on; "
                "output quality may fall past %d\n", ctx, trained, trained);
}

bool cli_same_file(int fd_a, int fd_b) {
    struct stat a, b;
    return fstat(fd_a, &a) == 0 && fstat(fd_b, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int cli_fail_open(const char *path, const char *msg) {
    if (access(path, F_OK) != 0)   /* what the user typed is not there: say what nook accepts */
        return cli_fail(CLI_EFAIL, "%s: no such file (give the path of a .gguf file, or a model name such as "
                        "llama3.2; 'nook list' shows the models you have)", path);
    return cli_fail(CLI_EFAIL, "%s", msg);
}
