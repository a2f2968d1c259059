/*
 * ledger.c: the egress ledger (contract and file format in ledger.h).
 *
 * Appending: under an exclusive flock, read the file's last line to learn its seq and
 * hash, serialize the new object, write it with one write() on an O_APPEND descriptor,
 * fsync, then replace the head file atomically. A tail without a newline can only be a
 * write that never completed (a crash or a full disk; the send it would have preceded
 * never happened, because sending waits for the fsync), so it is cut off first.
 */
#include "net/ledger.h"
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct nk_ledger {
    int fd;
    char path[4096];
    char head[4096];
};

bool nk_nook_home(char *buf, size_t cap) {
    const char *h = getenv("NOOK_HOME");
    int n;
    if (h && *h) n = snprintf(buf, cap, "%s", h);
    else if ((h = getenv("HOME")) && *h) n = snprintf(buf, cap, "%s/.nook", h);
    else return false;
    return n > 0 && (size_t)n < cap;
}

const char *nk_ledger_path(const nk_ledger *l) { return l->path; }

nook_status nk_ledger_open(const char *dir, nk_ledger **out, nook_error *err) {
    *out = NULL;
    char home[4000];
    if (!dir) {
        if (!nk_nook_home(home, sizeof home))
            return nk_fail(err, NOOK_EINVAL, "egress ledger: neither NOOK_HOME nor HOME is set");
        dir = home;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return nk_fail(err, NOOK_EIO, "egress ledger: cannot create %s: %s", dir, strerror(errno));
    nk_ledger *l = nk_calloc(1, sizeof *l);
    if (!l) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    snprintf(l->path, sizeof l->path, "%s/egress.jsonl", dir);
    snprintf(l->head, sizeof l->head, "%s/egress.head", dir);
    l->fd = open(l->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (l->fd < 0) {
        nook_status st = nk_fail(err, NOOK_EIO, "egress ledger: cannot open %s: %s", l->path, strerror(errno));
        nk_free(l);
        return st;
    }
    *out = l;
    return NOOK_OK;
}

void nk_ledger_close(nk_ledger *l) {
    if (!l) return;
    close(l->fd);
    nk_free(l);
}

/* Offset of the last '\n' in the file before offset `before`, -1 if none, -2 on a
 * read error. */
static off_t last_newline(int fd, off_t before) {
    char chunk[4096];
    off_t pos = before;
    while (pos > 0) {
        size_t n = (size_t)NK_MIN((off_t)sizeof chunk, pos);
        pos -= (off_t)n;
        if (pread(fd, chunk, n, pos) != (ssize_t)n) return -2;
        for (size_t i = n; i-- > 0;)
            if (chunk[i] == '\n') return pos + (off_t)i;
    }
    return -1;
}

/* Reads the last complete line of the (locked) file into a fresh buffer; cuts off an
 * unterminated tail first. *line = NULL for an empty file. */
static nook_status read_last_line(nk_ledger *l, char **line, size_t *len, nook_error *err) {
    *line = NULL;
    *len = 0;
    struct stat st;
    if (fstat(l->fd, &st) != 0) return nk_fail(err, NOOK_EIO, "%s: %s", l->path, strerror(errno));
    off_t size = st.st_size;
    if (size == 0) return NOOK_OK;
    off_t end = last_newline(l->fd, size);
    if (end == -2) return nk_fail(err, NOOK_EIO, "%s: read failed: %s", l->path, strerror(errno));
    if (end + 1 < size) {   /* bytes after the last newline: a write that never finished */
        nk_log(NK_LOG_WARN, "egress ledger %s: removing an incomplete last line (%lld bytes)",
               l->path, (long long)(size - end - 1));
        if (ftruncate(l->fd, end + 1) != 0)
            return nk_fail(err, NOOK_EIO, "%s: cannot cut an incomplete line: %s", l->path, strerror(errno));
        if (end < 0) return NOOK_OK;
    }
    off_t start = last_newline(l->fd, end) + 1;
    if (start < 0) return nk_fail(err, NOOK_EIO, "%s: read failed: %s", l->path, strerror(errno));
    size_t n = (size_t)(end - start);
    char *buf = nk_malloc(n + 1);
    if (!buf) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (pread(l->fd, buf, n, start) != (ssize_t)n) {
        nk_free(buf);
        return nk_fail(err, NOOK_EIO, "%s: read failed: %s", l->path, strerror(errno));
    }
    buf[n] = 0;
    *line = buf;
    *len = n;
    return NOOK_OK;
}

static void utc_now(char *buf, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char d[32];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%.20s.%03dZ", d, (int)(ts.tv_nsec / 1000000) % 1000);
}

static nook_status write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return NOOK_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return NOOK_OK;
}

static nook_status append_locked(nk_ledger *l, const char *kind, json_t *fields,
                                 nk_ledger_ref *ref, nook_error *err) {
    char *last = NULL;
    size_t last_len = 0;
    nook_status st = read_last_line(l, &last, &last_len, err);
    if (st) return st;
    uint64_t seq = 1;
    char prev[65] = ZERO_HASH;
    if (last) {
        json_error_t je;
        json_t *o = json_loadb(last, last_len, 0, &je);
        json_t *s = o ? json_object_get(o, "seq") : NULL;
        if (!json_is_integer(s) || json_integer_value(s) < 1) {
            json_decref(o);
            nk_free(last);
            return nk_fail(err, NOOK_EFORMAT, "egress ledger %s: the last line is not a ledger entry "
                           "(run 'nook audit verify'); refusing to append", l->path);
        }
        seq = (uint64_t)json_integer_value(s) + 1;
        json_decref(o);
        st = nk_sha256_buf(last, last_len, prev, err);
        nk_free(last);
        if (st) return st;
    }
    char now[40];
    utc_now(now, sizeof now);
    json_t *obj = json_object();
    if (!obj) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    json_object_set_new(obj, "seq", json_integer((json_int_t)seq));
    json_object_set_new(obj, "prev", json_string(prev));
    json_object_set_new(obj, "time", json_string(now));
    json_object_set_new(obj, "kind", json_string(kind));
    const char *k;
    json_t *v;
    if (fields) json_object_foreach(fields, k, v) {
        if (strcmp(k, "seq") && strcmp(k, "prev") && strcmp(k, "time") && strcmp(k, "kind"))
            json_object_set(obj, k, v);
    }
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!line) return nk_fail(err, NOOK_ENOMEM, "egress ledger: cannot serialize the entry");
    size_t n = strlen(line);
    char hash[65];
    if ((st = nk_sha256_buf(line, n, hash, err))) { free(line); return st; }
    struct stat sb;
    off_t before = fstat(l->fd, &sb) == 0 ? sb.st_size : -1;
    line[n] = '\n';   /* json_dumps' NUL becomes the newline; written as one unit */
    st = write_all(l->fd, line, n + 1);
    int e = errno;
    free(line);
    if (st == NOOK_OK && fsync(l->fd) != 0) { st = NOOK_EIO; e = errno; }
    if (st) {
        if (before >= 0 && ftruncate(l->fd, before) == 0) (void)fsync(l->fd);
        return nk_fail(err, NOOK_EIO, "egress ledger %s: cannot write: %s (nothing was sent)",
                       l->path, strerror(e));
    }
    char head[160];
    int hn = snprintf(head, sizeof head, "{\"seq\":%llu,\"hash\":\"%s\"}\n", (unsigned long long)seq, hash);
    if ((st = nk_write_file_atomic(l->head, head, (size_t)hn, err))) return st;
    if (ref) {
        ref->seq = seq;
        snprintf(ref->audit_id, sizeof ref->audit_id, "%llu-%.12s", (unsigned long long)seq, hash);
    }
    return NOOK_OK;
}

nook_status nk_ledger_append(nk_ledger *l, const char *kind, json_t *fields,
                             nk_ledger_ref *ref, nook_error *err) {
    while (flock(l->fd, LOCK_EX) != 0)
        if (errno != EINTR) return nk_fail(err, NOOK_EIO, "%s: cannot lock: %s", l->path, strerror(errno));
    nook_status st = append_locked(l, kind, fields, ref, err);
    flock(l->fd, LOCK_UN);
    return st;
}

/* The host part of a URL, for the line (the full URL is there too). */
static json_t *url_host(const char *url) {
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p) return json_null();
    p += 3;
    const char *at = NULL, *q = p;
    for (; *q && *q != '/' && *q != '?' && *q != '#'; q++) if (*q == '@') at = q;
    if (at) p = at + 1;
    return json_stringn(p, (size_t)(q - p));
}

static void set_str(json_t *o, const char *k, const char *v) {
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void set_num(json_t *o, const char *k, double v) {
    json_object_set_new(o, k, isfinite(v) ? json_real(v) : json_null());
}

nook_status nk_ledger_egress(nk_ledger *l, const nk_egress *e, nk_ledger_ref *ref,
                             nook_error *err) {
    char hash[65];
    nook_status st = nk_sha256_buf(e->body, e->body_len, hash, err);
    if (st) return st;
    json_t *f = json_object();
    if (!f) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    set_str(f, "request_id", e->request_id);
    json_object_set_new(f, "host", url_host(e->url));
    set_str(f, "url", e->url);
    set_str(f, "model", e->model);
    set_str(f, "policy", e->policy);
    set_str(f, "reason", e->reason);
    json_object_set(f, "signals", e->signals ? e->signals : json_null());
    set_num(f, "threshold", e->threshold);
    json_object_set(f, "redactions", e->redactions ? e->redactions : json_null());
    json_object_set_new(f, "bytes", json_integer((json_int_t)e->body_len));
    json_object_set_new(f, "tokens", e->tokens >= 0 ? json_integer(e->tokens) : json_null());
    json_object_set_new(f, "body_sha256", json_string(hash));
    if (e->log_body) {
        json_t *b = json_stringn(e->body, e->body_len);   /* NULL if not UTF-8 */
        json_object_set_new(f, "body", b ? b : json_string("(not UTF-8; see body_sha256)"));
    }
    st = nk_ledger_append(l, "egress", f, ref, err);
    json_decref(f);
    return st;
}

nook_status nk_ledger_complete(nk_ledger *l, const nk_ledger_ref *egress, const char *request_id,
                               long status, const void *resp, size_t resp_len, int64_t tokens,
                               double cost, const char *error, nook_error *err) {
    char hash[65] = "";
    if (resp) {
        nook_status st = nk_sha256_buf(resp, resp_len, hash, err);
        if (st) return st;
    }
    json_t *f = json_object();
    if (!f) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    json_object_set_new(f, "ref", json_integer((json_int_t)egress->seq));
    set_str(f, "request_id", request_id);
    json_object_set_new(f, "status", json_integer(status));
    set_str(f, "response_sha256", resp ? hash : NULL);
    json_object_set_new(f, "bytes", json_integer((json_int_t)(resp ? resp_len : 0)));
    json_object_set_new(f, "tokens", tokens >= 0 ? json_integer(tokens) : json_null());
    set_num(f, "cost", cost);
    set_str(f, "error", error);
    nook_status st = nk_ledger_append(l, "complete", f, NULL, err);
    json_decref(f);
    return st;
}

nook_status nk_ledger_log_pull(const char *url, const char *what, nook_error *err) {
    nk_ledger *l = NULL;
    nook_status st = nk_ledger_open(NULL, &l, err);
    if (st) return st;
    json_t *f = json_object();
    if (!f) { nk_ledger_close(l); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    json_object_set_new(f, "host", url_host(url));
    set_str(f, "url", url);
    set_str(f, "what", what);
    json_object_set_new(f, "user_content", json_false());
    st = nk_ledger_append(l, "pull", f, NULL, err);
    json_decref(f);
    nk_ledger_close(l);
    return st;
}

/* ---- verification ------------------------------------------------------------------ */

static void bad(nk_ledger_report *r, uint64_t line, const char *fmt, const char *a) {
    r->ok = false;
    r->bad_line = line;
    snprintf(r->problem, sizeof r->problem, fmt, a);
}

/* Pending egress seqs: a small sorted-by-insertion set (completions remove). */
typedef struct seqset { uint64_t *v; size_t n, cap; } seqset;

static bool seqset_add(seqset *s, uint64_t x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint64_t *p = nk_realloc(s->v, cap * sizeof *p);
        if (!p) return false;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

static void seqset_del(seqset *s, uint64_t x) {
    for (size_t i = s->n; i-- > 0;)
        if (s->v[i] == x) { s->v[i] = s->v[--s->n]; return; }
}

nook_status nk_ledger_verify_buf(const char *data, size_t len, const char *head, size_t head_len,
                                 nk_ledger_line_fn fn, void *ud, nk_ledger_report *rep,
                                 nook_error *err) {
    memset(rep, 0, sizeof *rep);
    rep->ok = true;
    char prev[65] = ZERO_HASH, prev_prev[65] = "";
    seqset pending = { 0 };
    nook_status st = NOOK_OK;
    size_t pos = 0;
    uint64_t lineno = 0;
    bool stop = false;
    while (pos < len && rep->ok && !stop) {
        lineno++;
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl) { bad(rep, lineno, "%sthe last line is incomplete (no newline)", ""); break; }
        const char *line = data + pos;
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        json_error_t je;
        json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(o)) {
            json_decref(o);
            bad(rep, lineno, "not a JSON object: %s", je.text);
            break;
        }
        json_t *s = json_object_get(o, "seq"), *p = json_object_get(o, "prev");
        json_t *k = json_object_get(o, "kind");
        if (!json_is_integer(s) || json_integer_value(s) != (json_int_t)lineno) {
            bad(rep, lineno, "%sseq is not the line number (a line was deleted, inserted or moved)", "");
        } else if (!json_is_string(p) || strcmp(json_string_value(p), prev) != 0) {
            bad(rep, lineno, "%sprev is not the hash of the line before (a line was changed, deleted or moved)", "");
        } else if (!json_is_string(k)) {
            bad(rep, lineno, "%skind is missing", "");
        }
        if (rep->ok) {
            const char *kind = json_string_value(k);
            json_t *ref = json_object_get(o, "ref");
            if (strcmp(kind, "egress") == 0) {
                rep->egress++;
                if (!seqset_add(&pending, lineno)) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); rep->ok = false; }
            } else if (strcmp(kind, "complete") == 0) {
                rep->complete++;
                if (json_is_integer(ref)) seqset_del(&pending, (uint64_t)json_integer_value(ref));
            } else if (strcmp(kind, "pull") == 0) {
                rep->pull++;
            }
            memcpy(prev_prev, prev, sizeof prev);
            if ((st = nk_sha256_buf(line, n, prev, err))) rep->ok = false;
            else {
                rep->lines = lineno;
                if (fn && !fn(o, line, n, ud)) stop = true;
            }
        }
        json_decref(o);
    }
    rep->pending = pending.n;
    nk_free(pending.v);
    if (st) return st;
    if (rep->lines) memcpy(rep->last_hash, prev, sizeof prev);
    if (rep->ok && !stop && head) {
        json_error_t je;
        json_t *h = json_loadb(head, head_len, 0, &je);
        json_t *hs = json_object_get(h, "seq"), *hh = json_object_get(h, "hash");
        if (!json_is_integer(hs) || !json_is_string(hh)) {
            bad(rep, 0, "%sthe head file is not {\"seq\":N,\"hash\":H}", "");
        } else if ((uint64_t)json_integer_value(hs) == rep->lines && strcmp(json_string_value(hh), prev) == 0) {
            /* the head names the last line */
        } else if (rep->lines > 0 && (uint64_t)json_integer_value(hs) + 1 == rep->lines &&
                   strcmp(json_string_value(hh), prev_prev) == 0) {
            rep->head_behind = true;
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "the head names line %lld but the file ends at line %llu "
                     "(lines were removed from the end, or the last line was changed)",
                     (long long)json_integer_value(hs), (unsigned long long)rep->lines);
            bad(rep, 0, "%s", msg);
        }
        json_decref(h);
    }
    return NOOK_OK;
}

nook_status nk_ledger_verify(const char *dir, nk_ledger_line_fn fn, void *ud,
                             nk_ledger_report *rep, nook_error *err) {
    char home[4000], path[4096], hpath[4096];
    if (!dir) {
        if (!nk_nook_home(home, sizeof home))
            return nk_fail(err, NOOK_EINVAL, "egress ledger: neither NOOK_HOME nor HOME is set");
        dir = home;
    }
    snprintf(path, sizeof path, "%s/egress.jsonl", dir);
    snprintf(hpath, sizeof hpath, "%s/egress.head", dir);
    char *data = NULL, *head = NULL;
    size_t len = 0, hlen = 0;
    nook_status st;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        data = nk_strdup("");
        if (!data) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    } else if ((st = nk_read_file(path, &data, &len, err))) {
        return st;
    }
    bool have_head = access(hpath, F_OK) == 0;
    if (have_head && (st = nk_read_file(hpath, &head, &hlen, err))) { nk_free(data); return st; }
    if (!have_head && len > 0) {
        /* lines but no head: the head was deleted (or never written: a crash before the
         * first head); check the chain and say so */
        st = nk_ledger_verify_buf(data, len, NULL, 0, fn, ud, rep, err);
        if (!st && rep->ok) {
            rep->ok = false;
            snprintf(rep->problem, sizeof rep->problem, "the head file egress.head is missing");
        }
    } else {
        st = nk_ledger_verify_buf(data, len, head, hlen, fn, ud, rep, err);
    }
    nk_free(data);
    nk_free(head);
    return st;
}
