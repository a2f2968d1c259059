/* Base layer, hostile paths and files (docs/security.md): a FIFO, socket, directory or
 * device given as a file is refused by every loader before any blocking open (an alarm
 * fails the test if one blocks); a mapped file truncated under us does not kill the
 * process (SIGBUS guard, mapguard.c): the faulting read sees zeros and nk_map_check
 * reports it; a fault outside every guarded mapping still kills as before; a file
 * shrunk or modified between uses is reported by nk_map_check before any touch. */
#include "base/base.h"
#include "nk_test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_file_hostile: a loader blocked on a non-regular file\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static void refuse_all(const char *path, const char *want) {
    nook_error err = { 0 };
    nk_map m;
    char *buf;
    size_t n;
    CHECK(nk_map_file(path, false, &m, &err) == NOOK_EIO);
    CHECK_MSG(strstr(err.msg, want) && strstr(err.msg, path), "%s: %s", path, err.msg);
    CHECK(nk_map_file(path, true, &m, &err) == NOOK_EIO);
    CHECK(nk_map_file_huge(path, &m, &err) == NOOK_EIO);
    CHECK(nk_load_file(path, 2, &m, &err) == NOOK_EIO);
    CHECK(nk_read_file(path, &buf, &n, &err) == NOOK_EIO);
    CHECK_MSG(strstr(err.msg, want) != NULL, "%s", err.msg);
}

static bool write_pages(const char *path, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return false;
    uint8_t page[4096];
    memset(page, 0xab, sizeof page);
    for (size_t i = 0; i < n; i++)
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) { close(fd); return false; }
    return close(fd) == 0;
}

int main(void) {
    signal(SIGALRM, on_alarm);
    alarm(20);
    char dir[] = "/tmp/nook_hostile_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fifo[256], sock[256], file[256];
    snprintf(fifo, sizeof fifo, "%s/model.gguf", dir);
    snprintf(sock, sizeof sock, "%s/sock.gguf", dir);
    snprintf(file, sizeof file, "%s/file.bin", dir);

    /* a FIFO with no writer: open(O_RDONLY) would block forever */
    CHECK(mkfifo(fifo, 0600) == 0);
    refuse_all(fifo, "named pipe");
    refuse_all(dir, "directory");
    refuse_all("/dev/null", "character device");
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock) >= sizeof sa.sun_path) nk_test_skip("socket path too long");
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    CHECK(sfd >= 0 && bind(sfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    refuse_all(sock, "socket");
    close(sfd);
    alarm(0);

    /* truncated while mapped: the read of a page past the new end sees zeros */
    const size_t pg = 4096;
    for (int huge = 0; huge < 2; huge++) {
        size_t pages = huge ? 1024 : 3;   /* 4 MB takes nk_map_file_huge's own path */
        CHECK(write_pages(file, pages));
        nook_error err = { 0 };
        nk_map m;
        nook_status st = huge ? nk_map_file_huge(file, &m, &err) : nk_map_file(file, false, &m, &err);
        CHECK_MSG(st == NOOK_OK, "%s", err.msg);
        CHECK(m.kind == NK_MAP_MMAP && m.guard > 0);
        CHECK(nk_map_check(&m, file, &err) == NOOK_OK);
        CHECK(truncate(file, (off_t)pg) == 0);
        volatile const uint8_t *d = m.data;
        CHECK(d[0] == 0xab);                       /* still in the file */
        CHECK(d[pg * (pages - 1) + 5] == 0);       /* past the end: patched, not SIGBUS */
        CHECK(d[pg + 1] == 0);
        CHECK(nk_map_check(&m, file, &err) == NOOK_EIO);
        CHECK_MSG(strstr(err.msg, "truncated while in use") && strstr(err.msg, file), "%s", err.msg);
        nk_unmap(&m);
    }

    /* shrunk or modified between uses: reported before anything is touched */
    CHECK(write_pages(file, 3));
    nook_error err = { 0 };
    nk_map m;
    CHECK(nk_map_file(file, false, &m, &err) == NOOK_OK);
    CHECK(truncate(file, (off_t)(2 * pg)) == 0);
    CHECK(nk_map_check(&m, file, &err) == NOOK_EIO);
    CHECK_MSG(strstr(err.msg, "shrank from 12288 to 8192 bytes"), "%s", err.msg);
    nk_unmap(&m);
    CHECK(write_pages(file, 3));
    CHECK(nk_map_file(file, false, &m, &err) == NOOK_OK);
    struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
    CHECK(utimensat(AT_FDCWD, file, ts, 0) == 0);
    CHECK(nk_map_check(&m, file, &err) == NOOK_EIO);
    CHECK_MSG(strstr(err.msg, "modified while in use"), "%s", err.msg);
    nk_unmap(&m);
    /* private copies are immune */
    CHECK(nk_map_file(file, true, &m, &err) == NOOK_OK && m.kind == NK_MAP_HEAP);
    CHECK(truncate(file, 0) == 0);
    CHECK(nk_map_check(&m, file, &err) == NOOK_OK && m.data[pg * 2] == 0xab);
    nk_unmap(&m);

    /* a fault in a mapping nook does not guard still terminates with SIGBUS (the
     * guard passes on what is not its own) */
    CHECK(write_pages(file, 3));
    pid_t pid = fork();
    if (pid == 0) {
        nk_map mine;
        nook_error e2;
        if (nk_map_file(file, false, &mine, &e2) != NOOK_OK) _exit(3);   /* installs the guard */
        int fd = open(file, O_RDONLY);
        volatile const uint8_t *raw = mmap(NULL, 3 * pg, PROT_READ, MAP_SHARED, fd, 0);
        if (truncate(file, 0) != 0) _exit(4);
        (void)raw[2 * pg];
        _exit(0);
    }
    int ws = 0;
    CHECK(waitpid(pid, &ws, 0) == pid);
    /* SIGBUS itself, or (under ASan, whose handler was there first) its report and exit */
    CHECK_MSG((WIFSIGNALED(ws) && WTERMSIG(ws) == SIGBUS) || (WIFEXITED(ws) && WEXITSTATUS(ws) != 0 && WEXITSTATUS(ws) < 3), "status %#x", ws);

    unlink(file);
    unlink(fifo);
    unlink(sock);
    rmdir(dir);
    NK_TEST_DONE();
}
