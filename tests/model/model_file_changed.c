/* model_file_changed: a model file truncated, rewritten in place or swapped for a FIFO
 * never kills nook (issue 16; docs/security.md). A copy of stories260K is loaded
 * (mapped), then:
 *  - truncated between requests: the next decode fails with NOOK_EIO naming the file,
 *    and so does every later one (nook_model_check);
 *  - truncated while another thread decodes in a loop: the decoding thread gets
 *    NOOK_EIO (from the size check or, inside a pass, from the SIGBUS guard) and the
 *    process lives;
 *  - rewritten in place with the same size: NOOK_EIO (modified);
 *  - replaced by rename: harmless, decoding goes on with the old bytes;
 *  - a FIFO as the model path: refused at once, no blocking open;
 *  - the private copy (no_mmap): immune to all of it. */
#include "nook.h"
#include "nk_test.h"

#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>

static bool copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    bool ok = a && b;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b) != 0) ok = false;
    return ok;
}

static nook_model *load(const char *path, bool no_mmap) {
    nook_model_params mp = nook_model_default_params();
    mp.no_mmap = no_mmap;
    nook_model *m = NULL;
    nook_error err;
    if (nook_model_load(path, &mp, &m, &err) != NOOK_OK) {
        fprintf(stderr, "load %s: %s\n", path, err.msg);
        exit(1);
    }
    return m;
}

static nook_session *session(const nook_model *m) {
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = 64;
    sp.n_threads = 2;
    nook_session *s = NULL;
    nook_error err;
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) {
        fprintf(stderr, "session: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static const nook_token k_prompt[] = { 1, 403, 407, 261, 378 };

typedef struct { nook_session *s; nook_status st; nook_error err; _Atomic long n_ok; } looper;

static void *decode_loop(void *arg) {
    looper *l = arg;
    for (long i = 0; i < 2000000; i++) {
        if (nook_session_n_past(l->s) + 5 > nook_session_n_ctx(l->s)) nook_session_truncate(l->s, 0);
        l->st = nook_session_decode(l->s, k_prompt, 5, NULL, &l->err);
        if (l->st != NOOK_OK) return NULL;
        l->n_ok++;
    }
    return NULL;
}

int main(void) {
    signal(SIGALRM, SIG_DFL);
    alarm(60);   /* a blocking open or a livelock fails the test instead of hanging CI */
    char src[1024];
    nk_test_fixture(src, sizeof src, "stories260K.gguf");
    char dir[] = "/tmp/nook_changed_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], other[256], fifo[256];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    snprintf(other, sizeof other, "%s/n.gguf", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.gguf", dir);
    nook_error err;

    /* truncated between requests */
    CHECK(copy_file(src, path));
    nook_model *m = load(path, false);
    nook_model *priv = load(path, true);
    nook_session *s = session(m), *ps = session(priv);
    CHECK_EQ_INT(nook_session_decode(s, k_prompt, 5, NULL, &err), NOOK_OK);
    CHECK_EQ_INT(nook_model_check(m, &err), NOOK_OK);
    CHECK(truncate(path, 4096) == 0);
    CHECK_EQ_INT(nook_session_decode(s, k_prompt, 1, NULL, &err), NOOK_EIO);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "shrank"), "%s", err.msg);
    CHECK_EQ_INT(nook_session_n_past(s), 5);
    CHECK_EQ_INT(nook_model_check(m, &err), NOOK_EIO);
    CHECK_EQ_INT(nook_session_decode(ps, k_prompt, 5, NULL, &err), NOOK_OK);   /* private copy */
    nook_session_free(s);
    nook_model_free(m);

    /* truncated while a thread decodes: EIO, not SIGBUS */
    for (int round = 0; round < 3; round++) {
        CHECK(copy_file(src, path));
        m = load(path, false);
        looper l = { .s = session(m) };
        pthread_t th;
        CHECK(pthread_create(&th, NULL, decode_loop, &l) == 0);
        while (l.n_ok == 0 && l.st == NOOK_OK) usleep(1000);   /* decoding has started */
        usleep(5000 * round);
        CHECK(truncate(path, round == 0 ? 0 : 4096 * round) == 0);
        pthread_join(th, NULL);
        CHECK_MSG(l.st == NOOK_EIO && strstr(l.err.msg, path), "round %d: status %d after %ld decodes: %s",
                  round, l.st, (long)l.n_ok, l.err.msg);
        CHECK(l.n_ok > 0);
        nook_session_free(l.s);
        nook_model_free(m);
    }

    /* rewritten in place with the same size */
    CHECK(copy_file(src, path));
    m = load(path, false);
    s = session(m);
    CHECK(copy_file(src, other));
    struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
    FILE *f = fopen(path, "r+b");
    CHECK(f && fseek(f, 100000, SEEK_SET) == 0 && fputc(0x55, f) != EOF && fclose(f) == 0);
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);   /* a coarse clock must not hide the write */
    CHECK_EQ_INT(nook_session_decode(s, k_prompt, 5, NULL, &err), NOOK_EIO);
    CHECK_MSG(strstr(err.msg, "modified"), "%s", err.msg);
    nook_session_free(s);
    nook_model_free(m);

    /* replaced by rename: the mapping keeps the old file */
    CHECK(copy_file(src, path));
    m = load(path, false);
    s = session(m);
    CHECK(rename(other, path) == 0);
    CHECK(truncate(path, 0) == 0);   /* the new file, not ours */
    CHECK_EQ_INT(nook_session_decode(s, k_prompt, 5, NULL, &err), NOOK_OK);
    nook_session_free(s);
    nook_model_free(m);

    /* a FIFO as the model path */
    CHECK(mkfifo(fifo, 0600) == 0);
    nook_model_params mp = nook_model_default_params();
    CHECK_EQ_INT(nook_model_load(fifo, &mp, &m, &err), NOOK_EIO);
    CHECK_MSG(strstr(err.msg, fifo) && strstr(err.msg, "named pipe"), "%s", err.msg);
    mp.no_mmap = true;
    CHECK_EQ_INT(nook_model_load(fifo, &mp, &m, &err), NOOK_EIO);
    mp.vocab_only = true;
    CHECK_EQ_INT(nook_model_load(fifo, &mp, &m, &err), NOOK_EIO);

    nook_session_free(ps);
    nook_model_free(priv);
    unlink(path);
    unlink(fifo);
    rmdir(dir);
    NK_TEST_DONE();
}
