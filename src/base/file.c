/*
 * file.c: read-only file mappings and small whole-file reads and atomic writes.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
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

nook_status nk_map_file(const char *path, bool no_mmap, nk_map *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return nk_fail(err, NOOK_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        out->data = (const uint8_t *)"";
        return NOOK_OK;
    }
    if (!no_mmap) {
        void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            out->data = p;
            out->size = size;
            out->mapped = true;
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
    return NOOK_OK;
}

void nk_unmap(nk_map *m) {
    if (!m || !m->data) return;
    if (m->mapped) munmap((void *)m->data, m->size);
    else if (m->size) nk_free((void *)m->data);
    memset(m, 0, sizeof *m);
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
