/*
 * file.c: read-only file mappings and small whole-file reads and atomic writes.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static nook_status read_all(int fd, uint8_t *buf, size_t size, const char *path, nook_error *err) {
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return nk_fail(err, NOOK_EIO, "%s: read failed: %s", path, strerror(errno));
        if (r == 0) return nk_fail(err, NOOK_EIO, "%s: file shrank while reading", path);
        got += (size_t)r;
    }
    return NOOK_OK;
}

static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a named pipe (FIFO)";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "not a regular file";
}

static nook_status not_regular(const char *path, mode_t mode, nook_error *err) {
    const char *k = file_kind(mode);
    if (k[0] == 'n') return nk_fail(err, NOOK_EIO, "%s: %s", path, k);
    return nk_fail(err, NOOK_EIO, "%s: is %s, not a regular file", path, k);
}

/* Open path read-only and check it is a regular file; on success *fd, *size and (if
 * not NULL) *mtime_ns are set and the caller closes *fd. Errors: NOOK_EIO naming the
 * file. Why three steps: open() on a FIFO blocks until a writer appears (forever, for
 * a mistyped path), and opening a device can have side effects (a tape rewinds), so
 * the type is checked with stat() before any open; the open is O_NONBLOCK in case the
 * path was swapped for a FIFO in between, and fstat() on the descriptor is the check
 * of record (the file we read is the one we checked). */
static nook_status open_regular_ex(const char *path, int *fd, size_t *size, int64_t *mtime_ns, nook_error *err) {
    *fd = -1;
    struct stat st;
    if (stat(path, &st) != 0) return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode, err);
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (*fd < 0) return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno));
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        bool reg = S_ISREG(st.st_mode);
        close(*fd);
        *fd = -1;
        if (!reg) return not_regular(path, st.st_mode, err);
        return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(e));
    }
    int fl = fcntl(*fd, F_GETFL);
    if (fl >= 0) (void)fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(*fd);
        *fd = -1;
        return nk_fail(err, NOOK_EIO, "%s: file too large", path);
    }
    *size = (size_t)st.st_size;
    if (mtime_ns) *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return NOOK_OK;
}

static nook_status open_regular(const char *path, int *fd, size_t *size, nook_error *err) {
    return open_regular_ex(path, fd, size, NULL, err);
}

/* A file mapping from here on stays tied to its file: keep the descriptor for
 * nk_map_check and register the range with the SIGBUS guard. */
static void adopt_mapping(nk_map *out, const uint8_t *data, size_t size, int fd, int64_t mtime_ns) {
    out->data = data;
    out->size = size;
    out->kind = NK_MAP_MMAP;
    out->fd = fd;
    out->mtime_ns = mtime_ns;
    out->guard = nk_guard_add(data, size);
}

nook_status nk_map_file(const char *path, bool no_mmap, nk_map *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    int fd;
    size_t size;
    int64_t mtime_ns = 0;
    nook_status st0 = open_regular_ex(path, &fd, &size, &mtime_ns, err);
    if (st0 != NOOK_OK) return st0;
    if (size == 0) {
        close(fd);
        out->data = (const uint8_t *)"";
        return NOOK_OK;
    }
    if (!no_mmap) {
        void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            adopt_mapping(out, p, size, fd, mtime_ns);
            return NOOK_OK;
        }
        /* fall through to reading: some filesystems cannot map */
    }
    uint8_t *buf = nk_malloc(size);
    if (!buf) {
        close(fd);
        return nk_fail(err, NOOK_ENOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    nook_status st2 = read_all(fd, buf, size, path, err);
    close(fd);
    if (st2 != NOOK_OK) {
        nk_free(buf);
        return st2;
    }
    out->data = buf;
    out->size = size;
    out->kind = NK_MAP_HEAP;
    return NOOK_OK;
}

/* ---- nk_map_file_huge ------------------------------------------------------------------ */

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22   /* Linux 5.14; older kernels answer EINVAL: faults then */
#endif

/* Kilobytes of the mapping starting at addr that are mapped with 2 MB entries, from
 * /proc/self/smaps (FilePmdMapped), or -1 when that cannot be read. */
static long pmd_mapped_kb(const void *addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char want[32], line[256];
    snprintf(want, sizeof want, "%lx-", (unsigned long)(uintptr_t)addr);
    long kb = -1;
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, strlen(want)) == 0) { in = true; continue; }
        if (!in) continue;
        if (sscanf(line, "FilePmdMapped: %ld kB", &kb) == 1) break;
        if (strncmp(line, "VmFlags:", 8) == 0) break;   /* end of our entry */
    }
    fclose(f);
    return kb;
}

/* Drop [off, off+len) of the file from our mapping and the page cache, and read it
 * back through the mapping (which asks for 2 MB folios). */
static void reread(int fd, uint8_t *data, size_t off, size_t len) {
    (void)madvise(data + off, len, MADV_DONTNEED);   /* unmap: the cache can drop them */
    (void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
    (void)madvise(data + off, len, MADV_POPULATE_READ);
}

nook_status nk_map_file_huge(const char *path, nk_map *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    int fd;
    size_t size;
    int64_t mtime_ns = 0;
    nook_status st0 = open_regular_ex(path, &fd, &size, &mtime_ns, err);
    if (st0 != NOOK_OK) return st0;
    const size_t huge = (size_t)2 << 20;
    if (size < huge || size > SIZE_MAX - 2 * huge) {   /* small (or absurd): plain map */
        close(fd);
        return nk_map_file(path, false, out, err);
    }
    /* Reserve size + 2 MB of address space, place the file at a 2 MB boundary
     * inside it, and give back the rest: file offsets and addresses then agree
     * modulo 2 MB, which a 2 MB page-table entry needs. */
    const long pg = sysconf(_SC_PAGESIZE);
    const size_t page = pg > 0 ? (size_t)pg : 4096;
    const size_t mlen = (size + page - 1) / page * page;
    uint8_t *res = mmap(NULL, mlen + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) {
        close(fd);
        return nk_map_file(path, false, out, err);
    }
    uint8_t *data = (uint8_t *)(((uintptr_t)res + huge - 1) & ~(uintptr_t)(huge - 1));
    if (mmap(data, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        munmap(res, mlen + huge);
        close(fd);
        return nk_map_file(path, false, out, err);
    }
    if (data > res) munmap(res, (size_t)(data - res));
    if (res + mlen + huge > data + mlen) munmap(data + mlen, (size_t)(res + mlen + huge - (data + mlen)));
#ifdef MADV_HUGEPAGE
    (void)madvise(data, size, MADV_HUGEPAGE);
#endif
    (void)madvise(data, size, MADV_POPULATE_READ);

    /* Cached in small pages? Test one 2 MB window in the middle first, so a file
     * system without large folios costs one 2 MB read, not a whole file. */
    const long kb = pmd_mapped_kb(data);
    if (kb >= 0 && (size_t)kb * 1024 < size / 2 && size >= 16 * huge) {
        const size_t mid = size / 2 / huge * huge;
        reread(fd, data, mid, huge);
        const long kb2 = pmd_mapped_kb(data);
        if (kb2 >= kb + 2048) {
            nk_log(NK_LOG_INFO, "%s: reading the file again into 2 MB pages (once while it stays cached)", path);
            reread(fd, data, 0, size);
        }
    }
    adopt_mapping(out, data, size, fd, mtime_ns);
    return NOOK_OK;
}

/* ---- nk_load_file: parallel reads into huge-page anonymous memory --------------------- */

#define HUGE_SZ ((size_t)2 << 20)
#define READ_PIECE ((size_t)8 << 20)   /* bytes per pread: long enough to amortize the call */
#define MAX_READERS 16

typedef struct reader {
    pthread_t th;
    int fd;
    uint8_t *dst;
    size_t off, end;
    int err;          /* errno of the failure, or -1: the file shrank */
    bool started;
} reader;

static void *reader_main(void *arg) {
    reader *r = arg;
    size_t off = r->off;
    while (off < r->end) {
        size_t n = NK_MIN(r->end - off, READ_PIECE);
        ssize_t got = pread(r->fd, r->dst + off, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { r->err = errno; break; }
        if (got == 0) { r->err = -1; break; }
        off += (size_t)got;
    }
    return NULL;
}

nook_status nk_load_file(const char *path, int n_threads, nk_map *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    int fd;
    size_t size;
    nook_status st0 = open_regular(path, &fd, &size, err);
    if (st0 != NOOK_OK) return st0;
    if (size == 0) {
        close(fd);
        out->data = (const uint8_t *)"";
        return NOOK_OK;
    }
    /* Reserve one extra huge page so the data can start on a 2 MB boundary: the
     * kernel only backs aligned 2 MB ranges with huge pages. */
    if (size > SIZE_MAX - 2 * HUGE_SZ) {
        close(fd);
        return nk_fail(err, NOOK_ENOMEM, "%s: file too large", path);
    }
    const size_t span = (size + HUGE_SZ - 1) / HUGE_SZ * HUGE_SZ;
    const size_t base_size = span + HUGE_SZ;
    void *base = mmap(NULL, base_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        close(fd);
        return nk_fail(err, NOOK_ENOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    uint8_t *data = (uint8_t *)(((uintptr_t)base + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1));
#ifdef MADV_HUGEPAGE
    (void)madvise(data, span, MADV_HUGEPAGE);   /* advisory: 4 KiB pages still work */
#endif

    /* Readers take contiguous 2 MB-aligned slices, so each faults in whole huge
     * pages of its own. Thread creation failing is not an error: the caller's
     * thread reads whatever slices are left. */
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    n_threads = NK_MAX(1, NK_MIN(n_threads, MAX_READERS));
    if ((size_t)n_threads > span / HUGE_SZ) n_threads = (int)(span / HUGE_SZ);
    reader rd[MAX_READERS];
    const size_t slice = (span / HUGE_SZ + (size_t)n_threads - 1) / (size_t)n_threads * HUGE_SZ;
    for (int i = 0; i < n_threads; i++) {
        const size_t off = NK_MIN((size_t)i * slice, size);
        rd[i] = (reader){ .fd = fd, .dst = data, .off = off, .end = NK_MIN(off + slice, size) };
    }
    for (int i = 1; i < n_threads; i++) rd[i].started = pthread_create(&rd[i].th, NULL, reader_main, &rd[i]) == 0;
    reader_main(&rd[0]);
    for (int i = 1; i < n_threads; i++) {
        if (rd[i].started) pthread_join(rd[i].th, NULL);
        else reader_main(&rd[i]);
    }
    close(fd);
    for (int i = 0; i < n_threads; i++) {
        if (rd[i].err) {
            munmap(base, base_size);
            if (rd[i].err < 0) return nk_fail(err, NOOK_EIO, "%s: file shrank while reading", path);
            return nk_fail(err, NOOK_EIO, "%s: read failed: %s", path, strerror(rd[i].err));
        }
    }
    out->data = data;
    out->size = size;
    out->kind = NK_MAP_ANON;
    out->base = base;
    out->base_size = base_size;
    return NOOK_OK;
}

void nk_unmap(nk_map *m) {
    if (!m || !m->data) return;
    switch (m->kind) {
    case NK_MAP_MMAP:
        nk_guard_remove(m->guard);
        munmap((void *)m->data, m->size);
        close(m->fd);
        break;
    case NK_MAP_HEAP: nk_free((void *)m->data); break;
    case NK_MAP_ANON: munmap(m->base, m->base_size); break;
    case NK_MAP_NONE: break;
    }
    memset(m, 0, sizeof *m);
}

nook_status nk_map_check(const nk_map *m, const char *path, nook_error *err) {
    if (!m || m->kind != NK_MAP_MMAP) return NOOK_OK;
    const char *p = path ? path : "model file";
    if (nk_guard_tripped(m->guard))
        return nk_fail(err, NOOK_EIO, "%s: the file was truncated while in use (a read of it faulted); "
                       "load the model again", p);
    struct stat st;
    if (fstat(m->fd, &st) != 0) return nk_fail(err, NOOK_EIO, "%s: %s", p, strerror(errno));
    if ((uint64_t)st.st_size < m->size)
        return nk_fail(err, NOOK_EIO, "%s: the file shrank from %zu to %lld bytes while in use; load the model again",
                       p, m->size, (long long)st.st_size);
    if ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != m->mtime_ns)
        return nk_fail(err, NOOK_EIO, "%s: the file was modified while in use; load the model again", p);
    return NOOK_OK;
}

nook_status nk_read_file(const char *path, char **out, size_t *len, nook_error *err) {
    *out = NULL;
    nk_map m;
    nook_status st = nk_map_file(path, true, &m, err);
    if (st != NOOK_OK) return st;
    char *buf = nk_malloc(m.size + 1);
    if (!buf) {
        nk_unmap(&m);
        return nk_fail(err, NOOK_ENOMEM, "%s: out of memory", path);
    }
    memcpy(buf, m.data, m.size);
    buf[m.size] = 0;
    if (len) *len = m.size;
    nk_unmap(&m);
    *out = buf;
    return NOOK_OK;
}

nook_status nk_write_file_atomic(const char *path, const void *data, size_t len, nook_error *err) {
    size_t n = strlen(path);
    char *tmp = nk_malloc(n + 8);
    if (!tmp) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    snprintf(tmp, n + 8, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        nk_fail(err, NOOK_EIO, "%s: %s", tmp, strerror(errno));
        nk_free(tmp);
        return NOOK_EIO;
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            nk_fail(err, NOOK_EIO, "%s: write failed: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            nk_free(tmp);
            return NOOK_EIO;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno));
        unlink(tmp);
        nk_free(tmp);
        return NOOK_EIO;
    }
    nk_free(tmp);
    return NOOK_OK;
}
