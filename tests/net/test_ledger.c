/*
 * test_ledger.c: the egress ledger: lines chained by hash, body hashes equal to an
 * independent SHA-256 of the bytes, pending egress counted; every single-line edit,
 * deletion (first, middle, last), insertion and swap is caught by verify; a torn
 * last line is repaired before the next append; four processes appending at once keep
 * the chain; a write that fails (file size limit, as a full disk) leaves the file as
 * it was and reports an error.
 */
#include "nk_test.h"
#include "net/ledger.h"
#include "net/net.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

static char g_dir[256];

static char *slurp(const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    char *d = NULL;
    nook_error err;
    if (nk_read_file(path, &d, len, &err) != NOOK_OK) return NULL;
    return d;
}

static void spit(const char *name, const char *d, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(d, 1, len, f);
    fclose(f);
}

static bool verify_ok(nk_ledger_report *rep) {
    nook_error err;
    if (nk_ledger_verify(g_dir, NULL, NULL, rep, &err) != NOOK_OK) return false;
    return rep->ok;
}

/* Offsets of line starts in d. */
static int line_starts(const char *d, size_t len, size_t *starts, int cap) {
    int n = 0;
    for (size_t i = 0; i < len && n < cap; i++)
        if (i == 0 || d[i - 1] == '\n') starts[n++] = i;
    return n;
}

static void test_write_and_tamper(void) {
    nk_ledger *l = NULL;
    nook_error err;
    CHECK(nk_ledger_open(g_dir, &l, &err) == NOOK_OK);
    if (!l) return;
    const char *body = "{\"model\":\"big\",\"messages\":[{\"role\":\"user\",\"content\":\"hi [EMAIL_1]\"}]}";
    json_t *sig = json_pack("{s:f,s:f}", "mean_entropy", 2.5, "p_ok", 0.31);
    json_t *red = json_pack("{s:i}", "EMAIL", 1);
    nk_egress e = { .request_id = "req-1", .url = "https://user@api.example.com/v1/chat/completions",
                    .model = "big", .policy = "auto", .reason = "low confidence", .signals = sig,
                    .threshold = 0.5, .redactions = red, .tokens = 12, .body = body,
                    .body_len = strlen(body), .log_body = true };
    nk_ledger_ref r1, r2;
    CHECK(nk_ledger_egress(l, &e, &r1, &err) == NOOK_OK);
    CHECK_EQ_INT(r1.seq, 1);
    CHECK(nk_ledger_complete(l, &r1, "req-1", 200, "{\"ok\":1}", 8, 5, 0.0012, NULL, &err) == NOOK_OK);
    e.request_id = "req-2";
    e.log_body = false;
    CHECK(nk_ledger_egress(l, &e, &r2, &err) == NOOK_OK);
    CHECK_EQ_INT(r2.seq, 3);
    CHECK(strlen(r2.audit_id) == 14 && strncmp(r2.audit_id, "3-", 2) == 0);
    setenv("NOOK_HOME", g_dir, 1);
    CHECK(nk_ledger_log_pull("https://registry.ollama.ai/v2/library/qwen3/manifests/8b", "qwen3:8b", &err) == NOOK_OK);
    json_decref(sig);
    json_decref(red);
    nk_ledger_close(l);

    nk_ledger_report rep;
    CHECK(verify_ok(&rep));
    CHECK_EQ_INT(rep.lines, 4);
    CHECK_EQ_INT(rep.egress, 2);
    CHECK_EQ_INT(rep.complete, 1);
    CHECK_EQ_INT(rep.pull, 1);
    CHECK_EQ_INT(rep.pending, 1);

    size_t len;
    char *d = slurp("egress.jsonl", &len);
    CHECK(d != NULL);
    if (!d) return;
    char hash[65];
    CHECK(nk_sha256_buf(body, strlen(body), hash, &err) == NOOK_OK);
    char want[100];
    snprintf(want, sizeof want, "\"body_sha256\":\"%s\"", hash);
    CHECK(strstr(d, want) != NULL);
    CHECK(strstr(d, "\"host\":\"api.example.com\"") != NULL);
    CHECK(strstr(d, "\"user_content\":false") != NULL);
    CHECK(strncmp(d, "{\"seq\":1,\"prev\":\"0000", 21) == 0);

    size_t st[8];
    int n = line_starts(d, len, st, 8);
    CHECK_EQ_INT(n, 4);
    st[n] = len;
    char *t = malloc(2 * len + 1);
    /* flip one byte in each line (inside a value, so the JSON still parses where possible) */
    for (int i = 0; i < n; i++) {
        memcpy(t, d, len);
        size_t at = st[i] + (st[i + 1] - st[i]) - 3;
        t[at] = t[at] == 'a' ? 'b' : 'a';
        spit("egress.jsonl", t, len);
        CHECK_MSG(!verify_ok(&rep), "edit of line %d not caught", i + 1);
    }
    /* delete each line */
    for (int i = 0; i < n; i++) {
        size_t k = 0;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            memcpy(t + k, d + st[j], st[j + 1] - st[j]);
            k += st[j + 1] - st[j];
        }
        spit("egress.jsonl", t, k);
        CHECK_MSG(!verify_ok(&rep), "deletion of line %d not caught", i + 1);
    }
    /* swap neighbours */
    for (int i = 0; i + 1 < n; i++) {
        size_t k = 0;
        for (int j = 0; j < n; j++) {
            int s = j == i ? i + 1 : j == i + 1 ? i : j;
            memcpy(t + k, d + st[s], st[s + 1] - st[s]);
            k += st[s + 1] - st[s];
        }
        spit("egress.jsonl", t, k);
        CHECK_MSG(!verify_ok(&rep), "swap of lines %d,%d not caught", i + 1, i + 2);
    }
    /* a duplicated line */
    memcpy(t, d, len);
    memcpy(t + len, d + st[n - 1], len - st[n - 1]);
    spit("egress.jsonl", t, len + (len - st[n - 1]));
    CHECK(!verify_ok(&rep));
    /* deleting the head file */
    spit("egress.jsonl", d, len);
    CHECK(verify_ok(&rep));
    size_t hl;
    char *head = slurp("egress.head", &hl);
    char hp[512];
    snprintf(hp, sizeof hp, "%s/egress.head", g_dir);
    unlink(hp);
    CHECK(!verify_ok(&rep));
    spit("egress.head", head, hl);
    CHECK(verify_ok(&rep));
    free(t);
    nk_free(head);

    /* a torn last line (a crash mid-write) fails verify, and the next append cuts it */
    char *torn = malloc(len + 20);
    memcpy(torn, d, len);
    memcpy(torn + len, "{\"seq\":5,\"pr", 12);
    spit("egress.jsonl", torn, len + 12);
    CHECK(!verify_ok(&rep));
    CHECK(nk_ledger_open(g_dir, &l, &err) == NOOK_OK);
    nk_ledger_ref r5;
    CHECK(nk_ledger_append(l, "note", NULL, &r5, &err) == NOOK_OK);
    CHECK_EQ_INT(r5.seq, 5);
    nk_ledger_close(l);
    CHECK(verify_ok(&rep));
    CHECK_EQ_INT(rep.lines, 5);
    free(torn);
    nk_free(d);
}

/* Four processes append 25 lines each at once. */
static void test_concurrent(void) {
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        if ((kids[k] = fork()) == 0) {
            nk_ledger *l = NULL;
            nook_error err;
            if (nk_ledger_open(g_dir, &l, &err)) _exit(1);
            for (int i = 0; i < 25; i++)
                if (nk_ledger_append(l, "note", NULL, NULL, &err)) _exit(2);
            nk_ledger_close(l);
            _exit(0);
        }
    }
    for (int k = 0; k < 4; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    nk_ledger_report rep;
    CHECK(verify_ok(&rep));
    CHECK_EQ_INT(rep.lines, 105);
}

/* A write that fails (RLIMIT_FSIZE stands in for a full disk) leaves no partial line
 * and an error that says nothing was sent. */
static void test_full_disk(void) {
    size_t before;
    char *d = slurp("egress.jsonl", &before);
    nk_free(d);
    pid_t kid = fork();
    if (kid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { before + 40, before + 40 };
        setrlimit(RLIMIT_FSIZE, &rl);
        nk_ledger *l = NULL;
        nook_error err;
        if (nk_ledger_open(g_dir, &l, &err)) _exit(1);
        char big[200];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        json_t *f = json_pack("{s:s}", "pad", big);
        nook_status st = nk_ledger_append(l, "note", f, NULL, &err);
        json_decref(f);
        _exit(st == NOOK_EIO && strstr(err.msg, "nothing was sent") ? 0 : 3);
    }
    int status = 0;
    waitpid(kid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t after;
    d = slurp("egress.jsonl", &after);
    nk_free(d);
    CHECK_EQ_INT(after, before);
    nk_ledger_report rep;
    CHECK(verify_ok(&rep));
}

/* Hostile bytes: never a crash, always a verdict. */
static void test_garbage(void) {
    const char *cases[] = { "", "\n", "{}\n", "[1]\n", "{\"seq\":1}\n", "{\"seq\":1,\"prev\":1}\n",
                            "{\"seq\":1,\"prev\":\"0\",\"kind\":\"x\"}", "\xff\xfe\n", "{\"seq\":1,\"seq\":1}\n" };
    for (size_t i = 0; i < NK_ARRAY_LEN(cases); i++) {
        nk_ledger_report rep;
        nook_error err;
        CHECK(nk_ledger_verify_buf(cases[i], strlen(cases[i]), "x", 1, NULL, NULL, &rep, &err) == NOOK_OK);
        CHECK(!rep.ok);
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/nook-ledger-test-XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_write_and_tamper();
    test_concurrent();
    test_full_disk();
    test_garbage();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) return 1;
    NK_TEST_DONE();
}
