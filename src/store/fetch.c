/*
 * fetch.c: download one blob into the store: parallel ranged parts into a sparse
 * "<blob>-partial" file with a resumable part table beside it ("-partial.parts"),
 * retries with backoff, SHA-256 verification, fsync, rename. A file lock on the partial
 * file serializes two pulls of one blob (in one process or several): the second waits,
 * then finds the blob present.
 */
#include "store/pull_internal.h"
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARTS 16

typedef struct part {
    uint64_t off, len;
    _Atomic uint64_t done;
    _Atomic bool finished;
} part;

typedef struct job {
    const nk_fetch *f;
    int fd;
    part parts[MAX_PARTS];
    int n_parts;
    volatile int stop;      /* a fatal error in one part stops the others */
    bool fatal;             /* the partial file must go (wrong bytes/size), not kept for resume */
    pthread_mutex_t mu;
    nook_status st;         /* the first part's failure (the cause; later ones only stopped) */
    nook_error err;
} job;

/* Records a part's failure (the first one wins) and stops the other parts. */
static void fail_job(job *j, nook_status st, const nook_error *e, bool fatal) {
    pthread_mutex_lock(&j->mu);
    if (!j->st) { j->st = st; j->err = *e; }
    if (fatal) j->fatal = true;
    j->stop = 1;
    pthread_mutex_unlock(&j->mu);
}

typedef struct part_run { job *j; part *p; uint64_t pos, end; bool bad_status; int write_errno; } part_run;

static bool on_part_data(const void *data, size_t n, long status, void *ud) {
    part_run *r = ud;
    if (r->j->stop) return false;
    if (status != 206 && !(status == 200 && r->pos == 0 && r->end + 1 == r->j->f->size)) {
        r->bad_status = true;   /* a range answered with the whole body, at an offset */
        return false;
    }
    if (r->pos + n > r->end + 1) {  /* more than asked for: the blob is not what the manifest says */
        r->j->fatal = true;
        r->bad_status = true;
        return false;
    }
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = pwrite(r->j->fd, p, left, (off_t)r->pos);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {   /* a full disk, a file size limit: the store's problem, not the server's */
            r->write_errno = w < 0 ? errno : ENOSPC;
            return false;
        }
        p += w;
        left -= (size_t)w;
        r->pos += (uint64_t)w;
    }
    r->p->done += n;
    return true;
}

static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void *part_main(void *arg) {
    part_run r = { .j = ((part_run *)arg)->j, .p = ((part_run *)arg)->p };
    job *j = r.j;
    part *p = r.p;
    const nk_fetch *f = j->f;
    int attempt = 0;
    while (p->done < p->len && !j->stop && !(f->cancel && *f->cancel)) {
        r.pos = p->off + p->done;
        r.end = p->off + p->len - 1;
        r.bad_status = false;
        r.write_errno = 0;
        nk_http_req q = { .url = f->url, .headers = f->headers, .has_range = true,
                          .range_start = r.pos, .range_end = r.end, .stall_ms = f->stall_ms,
                          .allow_http = f->insecure, .purpose = "pull", .on_data = on_part_data,
                          .ud = &r, .cancel = f->cancel };
        nk_http_resp resp;
        nook_error e = { 0 };
        nook_status st = nk_http_do(&q, &resp, &e);
        char cr[128];
        const char *sl = NULL;
        if (st == NOOK_OK && (resp.status == 206 || resp.status == 416) &&
            nk_http_header(&resp, "Content-Range", cr, sizeof cr) && (sl = strrchr(cr, '/')) && sl[1] != '*' &&
            strtoull(sl + 1, NULL, 10) != f->size) {
            nk_fail(&e, NOOK_EFORMAT, "blob %.19s: the server has %s bytes, the manifest declares %llu",
                    f->digest, sl + 1, (unsigned long long)f->size);
            fail_job(j, NOOK_EFORMAT, &e, true);
            nk_http_resp_free(&resp);
            break;
        }
        if (r.write_errno) {   /* retrying cannot help; what was written stays (resumable) */
            nk_fail(&e, NOOK_EIO, "writing blob %.19s into the store: %s", f->digest, strerror(r.write_errno));
            fail_job(j, NOOK_EIO, &e, true);
            nk_http_resp_free(&resp);
            break;
        }
        if (r.bad_status) {
            if (j->fatal) nk_fail(&e, NOOK_EFORMAT, "blob %.19s: the server sent more bytes than the manifest declares", f->digest);
            else nk_fail(&e, NOOK_EUNSUPPORTED, "GET blob %.19s: the server answered a range request with HTTP %ld", f->digest, resp.status);
            fail_job(j, e.code, &e, j->fatal);
            nk_http_resp_free(&resp);
            break;
        }
        if (st == NOOK_OK && resp.status == 416) {
            nk_fail(&e, NOOK_EFORMAT, "blob %.19s: the server has fewer bytes than the manifest declares (%llu)",
                    f->digest, (unsigned long long)f->size);
            fail_job(j, NOOK_EFORMAT, &e, true);
            nk_http_resp_free(&resp);
            break;
        }
        if (st == NOOK_OK && resp.status >= 400) {
            bool transient = resp.status >= 500 || resp.status == 429 || resp.status == 408;
            nk_fail(&e, transient ? NOOK_EIO : NOOK_ENOTFOUND, "GET blob %.19s: HTTP %ld", f->digest, resp.status);
            st = e.code;
            if (!transient) { fail_job(j, st, &e, false); nk_http_resp_free(&resp); break; }
        } else if (st == NOOK_OK && p->done < p->len) {
            nk_fail(&e, NOOK_EIO, "GET blob %.19s: the connection closed early", f->digest);
            st = NOOK_EIO;
        }
        nk_http_resp_free(&resp);
        if (p->done >= p->len || j->stop) break;
        if (st == NOOK_EUNSUPPORTED || st == NOOK_EINVAL) { fail_job(j, st, &e, false); break; }
        if (++attempt > f->retries) { fail_job(j, st ? st : NOOK_EIO, &e, false); break; }
        nk_log(NK_LOG_INFO, "pull: %s; retrying (%d/%d)", e.msg, attempt, f->retries);
        sleep_ms(NK_MIN(100L << NK_MIN(attempt, 5), 2000L));
    }
    p->finished = true;
    return NULL;
}

/* ---- the part table (resume) ---- */

static void save_parts(const char *path, const job *j) {
    json_t *a = json_array();
    for (int i = 0; i < j->n_parts; i++)
        json_array_append_new(a, json_pack("[I,I,I]", (json_int_t)j->parts[i].off, (json_int_t)j->parts[i].len,
                                           (json_int_t)j->parts[i].done));
    json_t *o = json_pack("{s:I, s:o}", "size", (json_int_t)j->f->size, "parts", a);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return;
    char tmp[4200];
    if (nk_pfmt(tmp, sizeof tmp, "%s.tmp", path)) {
        FILE *fp = fopen(tmp, "w");
        if (fp) {
            bool ok = fputs(s, fp) >= 0;
            if (fclose(fp) == 0 && ok) rename(tmp, path);
        }
    }
    free(s);
}

static bool load_parts(const char *path, job *j) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) return false;
    json_t *a = json_object_get(o, "parts");
    bool ok = json_integer_value(json_object_get(o, "size")) == (json_int_t)j->f->size && json_is_array(a) &&
              json_array_size(a) >= 1 && json_array_size(a) <= MAX_PARTS;
    uint64_t expect = 0;
    for (size_t i = 0; ok && i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        json_int_t off = json_integer_value(json_array_get(e, 0)), len = json_integer_value(json_array_get(e, 1)),
                   done = json_integer_value(json_array_get(e, 2));
        if (off < 0 || len < 0 || done < 0 || done > len || (uint64_t)off != expect) { ok = false; break; }
        j->parts[i].off = (uint64_t)off;
        j->parts[i].len = (uint64_t)len;
        j->parts[i].done = (uint64_t)done;
        expect += (uint64_t)len;
    }
    if (ok && expect != j->f->size) ok = false;
    if (ok) j->n_parts = (int)json_array_size(a);
    json_decref(o);
    return ok;
}

nook_status nk_fetch_blob(nk_store *s, const nk_fetch *f, nook_error *err) {
    char final[4200], partial[4200], table[4200];
    nk_store_blob_path(s, f->digest, final, sizeof final);
    if (!nk_pfmt(partial, sizeof partial, "%s-partial", final) || !nk_pfmt(table, sizeof table, "%s-partial.parts", final))
        return nk_fail(err, NOOK_EINVAL, "store path too long");
    int fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return nk_fail(err, NOOK_EIO, "%s: %s", partial, strerror(errno));
    if (flock(fd, LOCK_EX) != 0) { close(fd); return nk_fail(err, NOOK_EIO, "%s: lock: %s", partial, strerror(errno)); }
    uint64_t have;
    if (nk_store_has_blob(s, f->digest, &have) && have == f->size) {   /* another pull finished it */
        close(fd);
        return NOOK_OK;
    }
    /* the lock holder may have deleted the partial file we opened: reopen by name */
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(partial, &b) != 0 || a.st_ino != b.st_ino) {
        close(fd);
        return nk_fetch_blob(s, f, err);
    }
    job *j = nk_calloc(1, sizeof *j);
    if (!j) { close(fd); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    j->f = f;
    j->fd = fd;
    pthread_mutex_init(&j->mu, NULL);
    if (!load_parts(table, j)) {
        int np = f->parts < 1 ? 1 : f->parts > MAX_PARTS ? MAX_PARTS : f->parts;
        uint64_t min_part = f->min_part ? f->min_part : (16u << 20);
        while (np > 1 && f->size / (uint64_t)np < min_part) np--;
        j->n_parts = np;
        uint64_t each = f->size / (uint64_t)np, off = 0;
        for (int i = 0; i < np; i++) {
            j->parts[i].off = off;
            j->parts[i].len = i == np - 1 ? f->size - off : each;
            off += j->parts[i].len;
        }
        if (ftruncate(fd, 0) != 0) { nk_free(j); close(fd); return nk_fail(err, NOOK_EIO, "%s: %s", partial, strerror(errno)); }
    }
    uint64_t done0 = 0;
    for (int i = 0; i < j->n_parts; i++) done0 += j->parts[i].done;
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < f->size - done0) {
        nk_free(j);
        close(fd);
        unlink(partial);
        unlink(table);
        return nk_fail(err, NOOK_ERANGE, "not enough disk space for blob %.19s: it needs %llu bytes, %llu are free",
                       f->digest, (unsigned long long)(f->size - done0), (unsigned long long)vfs.f_bavail * vfs.f_frsize);
    }
    save_parts(table, j);

    pthread_t th[MAX_PARTS];
    part_run args[MAX_PARTS];
    bool started[MAX_PARTS] = { 0 };
    for (int i = 0; i < j->n_parts; i++) {
        args[i] = (part_run){ .j = j, .p = &j->parts[i] };
        if (j->parts[i].done >= j->parts[i].len) { j->parts[i].finished = true; continue; }
        started[i] = pthread_create(&th[i], NULL, part_main, &args[i]) == 0;
        if (!started[i]) part_main(&args[i]);
    }
    /* the calling thread reports progress and saves the part table until all parts end */
    double last_save = nk_time_ms();
    for (;;) {
        bool all = true;
        uint64_t got = 0;
        for (int i = 0; i < j->n_parts; i++) {
            all = all && j->parts[i].finished;
            got += j->parts[i].done;
        }
        if (f->progress && !f->progress(got, f->ud)) j->stop = 1;
        if (nk_time_ms() - last_save > 250) { save_parts(table, j); last_save = nk_time_ms(); }
        if (all) break;
        sleep_ms(50);
    }
    for (int i = 0; i < j->n_parts; i++) if (started[i]) pthread_join(th[i], NULL);
    nook_status st = j->st;
    if (st && err) *err = j->err;
    bool incomplete = false;
    for (int i = 0; i < j->n_parts; i++) incomplete |= j->parts[i].done < j->parts[i].len;
    if (!st && (j->stop || incomplete)) st = nk_fail(err, NOOK_EIO, "pull cancelled");
    pthread_mutex_destroy(&j->mu);
    if (st) {
        if (j->fatal) { unlink(partial); unlink(table); }
        else save_parts(table, j);   /* resumable */
        nk_free(j);
        close(fd);
        return st;
    }
    nk_free(j);
    if (f->verifying) f->verifying(f->ud);
    char hex[65], got[72];
    if ((st = nk_sha256_file(partial, hex, err))) { close(fd); return st; }
    snprintf(got, sizeof got, "sha256:%s", hex);
    struct stat fs;
    if (strcmp(got, f->digest) != 0 || fstat(fd, &fs) != 0 || (uint64_t)fs.st_size != f->size) {
        unlink(partial);
        unlink(table);
        close(fd);
        return nk_fail(err, NOOK_EFORMAT, "blob %s: digest mismatch, the bytes received hash to %s (removed, not kept)",
                       f->digest, got);
    }
    if (fsync(fd) != 0 || rename(partial, final) != 0) {
        st = nk_fail(err, NOOK_EIO, "%s: %s", final, strerror(errno));
        close(fd);
        return st;
    }
    unlink(table);
    close(fd);
    return NOOK_OK;
}
