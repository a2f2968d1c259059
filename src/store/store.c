/*
 * store.c: the store on disk: root and paths, blobs (added through temp files, hashed,
 * fsync'd, renamed), manifests (read case-insensitively, written atomically), list,
 * remove with garbage collection, copy, and the store lock.
 */
#include "store/store_internal.h"
#include "gguf/gguf.h"
#include "net/net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct nk_store {
    char root[4096];
};

static bool env_true(const char *name) {
    const char *e = getenv(name);
    return e && (strcmp(e, "1") == 0 || strcasecmp(e, "true") == 0 || strcasecmp(e, "yes") == 0);
}

void nk_store_default_root(char *buf, size_t cap) {
    const char *home = getenv("HOME");
    if (!home || !*home) home = "/tmp";
    if (env_true("NOOK_OLLAMA_STORE")) {
        const char *om = getenv("OLLAMA_MODELS");
        if (om && *om) nk_pfmt(buf, cap, "%s", om);
        else nk_pfmt(buf, cap, "%s/.ollama/models", home);
        return;
    }
    const char *m = getenv("NOOK_MODELS");
    if (m && *m) { nk_pfmt(buf, cap, "%s", m); return; }
    const char *nh = getenv("NOOK_HOME");
    if (nh && *nh) nk_pfmt(buf, cap, "%s/models", nh);
    else nk_pfmt(buf, cap, "%s/.nook/models", home);
}

/* mkdir -p */
static nook_status mkdirs(const char *path, nook_error *err) {
    char tmp[4096];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return nk_fail(err, NOOK_EINVAL, "path too long");
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return nk_fail(err, NOOK_EIO, "%s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return nk_fail(err, NOOK_EIO, "%s: %s", tmp, strerror(errno));
    return NOOK_OK;
}

nook_status nk_store_open(const char *root, nk_store **out, nook_error *err) {
    nk_store *s = nk_calloc(1, sizeof *s);
    if (!s) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (root && *root) nk_pfmt(s->root, sizeof s->root, "%s", root);
    else nk_store_default_root(s->root, sizeof s->root);
    char p[4200];
    nook_status st;
    nk_pfmt(p, sizeof p, "%s/manifests", s->root);
    if ((st = mkdirs(p, err))) { nk_free(s); return st; }
    nk_pfmt(p, sizeof p, "%s/blobs", s->root);
    if ((st = mkdirs(p, err))) { nk_free(s); return st; }
    *out = s;
    return NOOK_OK;
}

void nk_store_free(nk_store *s) { nk_free(s); }
const char *nk_store_root(const nk_store *s) { return s->root; }

void nk_store_blob_path(const nk_store *s, const char *digest, char *buf, size_t cap) {
    nk_pfmt(buf, cap, "%s/blobs/sha256-%s", s->root, digest + 7);
}

bool nk_store_has_blob(const nk_store *s, const char *digest, uint64_t *size) {
    if (!nk_digest_valid(digest)) return false;
    char p[4200];
    nk_store_blob_path(s, digest, p, sizeof p);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (size) *size = (uint64_t)st.st_size;
    return true;
}

/* ---- locks ---- */

int nk_store_lock_shared(nk_store *s) {
    char p[4200];
    nk_pfmt(p, sizeof p, "%s/blobs/.nook-lock", s->root);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && flock(fd, LOCK_SH) != 0) { close(fd); fd = -1; }
    return fd;
}

void nk_store_unlock(int fd) {
    if (fd >= 0) close(fd);   /* closing releases the flock */
}

/* ---- manifests ---- */

/* Finds the entry of dir matching name case-insensitively (exact first). */
static bool find_ci(const char *dir, const char *name, char *out, size_t cap) {
    char p[4400];
    nk_pfmt(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    if (stat(p, &st) == 0) { nk_pfmt(out, cap, "%s", p); return true; }
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    while ((e = readdir(d))) {
        if (strcasecmp(e->d_name, name) == 0) {
            nk_pfmt(out, cap, "%s/%s", dir, e->d_name);
            found = true;
            break;
        }
    }
    closedir(d);
    return found;
}

/* The existing manifest path of n (case-insensitive), or false. */
static bool manifest_path(const nk_store *s, const nk_name *n, char *out, size_t cap) {
    char a[4400], b[4400];
    nk_pfmt(a, sizeof a, "%s/manifests", s->root);
    if (!find_ci(a, n->host, b, sizeof b)) return false;
    if (!find_ci(b, n->ns, a, sizeof a)) return false;
    if (!find_ci(a, n->model, b, sizeof b)) return false;
    if (!find_ci(b, n->tag, a, sizeof a)) return false;
    nk_pfmt(out, cap, "%s", a);
    return true;
}

static nook_status read_small(const char *path, size_t max, char **out, size_t *len, nook_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno));
    if ((uint64_t)st.st_size > max)
        return nk_fail(err, NOOK_ERANGE, "%s: %lld bytes, over the %zu-byte cap", path, (long long)st.st_size, max);
    return nk_read_file(path, out, len, err);
}

nook_status nk_store_read_manifest(const nk_store *s, const nk_name *n, nk_manifest *out,
                                   char *path_out, size_t cap, nook_error *err) {
    char p[4400], disp[512];
    nk_name_display(n, disp, sizeof disp);
    if (!manifest_path(s, n, p, sizeof p))
        return nk_fail(err, NOOK_ENOTFOUND, "model '%s' not found", disp);
    char *text = NULL;
    size_t len = 0;
    nook_status st = read_small(p, NK_MANIFEST_MAX, &text, &len, err);
    if (st) return st;
    st = nk_manifest_parse(text, len, out, err);
    nk_free(text);
    if (st) { nk_prefix(err, "%s: ", disp); return st; }
    if (path_out) nk_pfmt(path_out, cap, "%s", p);
    return NOOK_OK;
}

/* Writes data to dir/final through a hidden temp file in dir (an invalid name to
 * Ollama's and our listing), fsync, rename. */
static nook_status write_atomic_in(const char *dir, const char *final, const void *data, size_t len,
                                   nook_error *err) {
    char tmp[4400], dst[4400];
    nk_pfmt(tmp, sizeof tmp, "%s/.tmp-XXXXXX", dir);
    nk_pfmt(dst, sizeof dst, "%s/%s", dir, final);
    int fd = mkstemp(tmp);
    if (fd < 0) return nk_fail(err, NOOK_EIO, "%s: %s", dir, strerror(errno));
    fchmod(fd, 0644);
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;
        done += (size_t)w;
    }
    if (done != len || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, dst) != 0) {
        nk_fail(err, NOOK_EIO, "%s: %s", dst, strerror(errno));
        unlink(tmp);
        return NOOK_EIO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    return NOOK_OK;
}

static nook_status check_blobs(nk_store *s, const nk_manifest *m, nook_error *err) {
    uint64_t have;
    for (int i = -1; i < m->n_layers; i++) {
        const nk_layer *l = i < 0 ? &m->config : &m->layers[i];
        if (!nk_store_has_blob(s, l->digest, &have))
            return nk_fail(err, NOOK_EINTERNAL, "refusing to write a manifest: blob %s is missing", l->digest);
        if (have != l->size)
            return nk_fail(err, NOOK_EFORMAT, "refusing to write a manifest: blob %s has %llu bytes, the manifest says %llu",
                           l->digest, (unsigned long long)have, (unsigned long long)l->size);
    }
    return NOOK_OK;
}

static nook_status write_manifest_bytes(nk_store *s, const nk_name *n, const char *json, size_t len, nook_error *err) {
    char path[4400], dir[4400];
    const char *tag = n->tag;
    if (manifest_path(s, n, path, sizeof path)) {   /* keep the existing spelling */
        char *sl = strrchr(path, '/');
        *sl = 0;
        nk_pfmt(dir, sizeof dir, "%s", path);
        tag = sl + 1;
    } else {
        if (!nk_pfmt(dir, sizeof dir, "%s/manifests/%s/%s/%s", s->root, n->host, n->ns, n->model))
            return nk_fail(err, NOOK_EINVAL, "store path too long");
        nook_status st = mkdirs(dir, err);
        if (st) return st;
    }
    char tagbuf[128];
    nk_pfmt(tagbuf, sizeof tagbuf, "%s", tag);
    return write_atomic_in(dir, tagbuf, json, len, err);
}

nook_status nk_store_write_manifest(nk_store *s, const nk_name *n, const nk_manifest *m, nook_error *err) {
    nook_status st = check_blobs(s, m, err);
    if (st) return st;
    char *json = nk_manifest_json(m);
    if (!json) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    st = write_manifest_bytes(s, n, json, strlen(json), err);
    nk_free(json);
    return st;
}

nook_status nk_store_write_manifest_raw(nk_store *s, const nk_name *n, const char *json, size_t len,
                                        nook_error *err) {
    nk_manifest m;
    nook_status st = nk_manifest_parse(json, len, &m, err);
    if (st) return st;
    st = check_blobs(s, &m, err);
    nk_manifest_free(&m);
    return st ? st : write_manifest_bytes(s, n, json, len, err);
}

/* ---- adding blobs ---- */

/* A blob being written: blobs/.tmp-XXXXXX, renamed to its digest's name when complete.
 * It holds the store lock shared while it exists, so that rm's garbage collection (which
 * needs it exclusive) knows that any .tmp- file it can see is left over from a process
 * that died (kill -9, a crash) and may go. */
typedef struct blob_tmp { int fd, lock; char path[4400]; nk_sha256 h; uint64_t size; } blob_tmp;

static nook_status tmp_open(nk_store *s, blob_tmp *t, nook_error *err) {
    t->lock = nk_store_lock_shared(s);
    nk_pfmt(t->path, sizeof t->path, "%s/blobs/.tmp-XXXXXX", s->root);
    t->size = 0;
    t->fd = mkstemp(t->path);
    if (t->fd < 0) {
        nk_store_unlock(t->lock);
        return nk_fail(err, NOOK_EIO, "%s/blobs: %s", s->root, strerror(errno));
    }
    fchmod(t->fd, 0644);
    nook_status st = nk_sha256_init(&t->h, err);
    if (st) { close(t->fd); unlink(t->path); nk_store_unlock(t->lock); }
    return st;
}

static nook_status tmp_write(blob_tmp *t, const void *data, size_t n, nook_error *err) {
    const char *p = data;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(t->fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return nk_fail(err, NOOK_EIO, "writing a blob: %s", strerror(errno));
        done += (size_t)w;
    }
    nk_sha256_update(&t->h, data, n);
    t->size += n;
    return NOOK_OK;
}

static void tmp_abort(blob_tmp *t) {
    nk_sha256_free(&t->h);
    close(t->fd);
    unlink(t->path);
    nk_store_unlock(t->lock);
}

/* Finishes: checks the digest, fsyncs, renames to the blob's name. */
static nook_status tmp_commit(nk_store *s, blob_tmp *t, const char *expect, char digest[72], nook_error *err) {
    char hex[65];
    nk_sha256_final(&t->h, hex);
    nk_pfmt(digest, 72, "sha256:%s", hex);
    if (expect && strcmp(expect, digest) != 0) {
        close(t->fd);
        unlink(t->path);
        nk_store_unlock(t->lock);
        return nk_fail(err, NOOK_EFORMAT, "digest mismatch: expected %s, the bytes hash to %s", expect, digest);
    }
    char dst[4400];
    nk_store_blob_path(s, digest, dst, sizeof dst);
    if (fsync(t->fd) != 0 || close(t->fd) != 0 || rename(t->path, dst) != 0) {
        nk_fail(err, NOOK_EIO, "%s: %s", dst, strerror(errno));
        unlink(t->path);
        nk_store_unlock(t->lock);
        return NOOK_EIO;
    }
    nk_store_unlock(t->lock);
    return NOOK_OK;
}

nook_status nk_store_add_blob_file(nk_store *s, const char *src, const char *expect,
                                   char digest[72], uint64_t *size, nook_error *err) {
    return nk_store_add_blob_file_ex(s, src, expect, digest, size, NULL, NULL, err);
}

nook_status nk_store_add_blob_file_ex(nk_store *s, const char *src, const char *expect, char digest[72],
                                      uint64_t *size, nk_bytes_progress_fn progress, void *ud, nook_error *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return nk_fail(err, NOOK_EIO, "%s: %s", src, strerror(errno));
    struct stat sb;
    uint64_t total = fstat(in, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    if (progress && !progress(0, total, ud)) { close(in); return nk_fail(err, NOOK_EABORTED, "cancelled"); }
    blob_tmp t;
    nook_status st = tmp_open(s, &t, err);
    if (st) { close(in); return st; }
    enum { BUF = 1 << 20 };
    char *buf = nk_malloc(BUF);
    if (!buf) st = nk_fail(err, NOOK_ENOMEM, "out of memory");
    while (!st) {
        ssize_t r = read(in, buf, BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { st = nk_fail(err, NOOK_EIO, "%s: %s", src, strerror(errno)); break; }
        if (r == 0) break;
        st = tmp_write(&t, buf, (size_t)r, err);
        if (!st && progress && !progress(t.size, total, ud)) st = nk_fail(err, NOOK_EABORTED, "cancelled");
    }
    nk_free(buf);
    close(in);
    if (st) { tmp_abort(&t); return st; }
    if (size) *size = t.size;
    return tmp_commit(s, &t, expect, digest, err);
}

nook_status nk_store_add_blob_buf(nk_store *s, const void *data, size_t len, char digest[72], nook_error *err) {
    blob_tmp t;
    nook_status st = tmp_open(s, &t, err);
    if (st) return st;
    if ((st = tmp_write(&t, data, len, err))) { tmp_abort(&t); return st; }
    return tmp_commit(s, &t, NULL, digest, err);
}

nook_status nk_store_add_blob_stream(nk_store *s, nk_read_fn rd, void *ud, const char *expect,
                                     uint64_t max_size, nook_error *err) {
    if (!nk_digest_valid(expect)) return nk_fail(err, NOOK_EINVAL, "invalid digest '%.80s'", expect ? expect : "");
    blob_tmp t;
    nook_status st = tmp_open(s, &t, err);
    if (st) return st;
    char buf[65536];
    for (;;) {
        long r = rd(ud, buf, sizeof buf);
        if (r < 0) { st = nk_fail(err, NOOK_EIO, "reading the blob's bytes failed"); break; }
        if (r == 0) break;
        if (max_size && t.size + (uint64_t)r > max_size) { st = nk_fail(err, NOOK_ERANGE, "blob larger than %llu bytes", (unsigned long long)max_size); break; }
        if ((st = tmp_write(&t, buf, (size_t)r, err))) break;
    }
    if (st) { tmp_abort(&t); return st; }
    char d[72];
    return tmp_commit(s, &t, expect, d, err);
}

nook_status nk_store_validate_gguf(const char *path, nook_error *err) {
    nk_map m;
    nook_status st = nk_map_file(path, false, &m, err);
    if (st) return st;
    gguf_file *g = NULL;
    st = gguf_parse(m.data, m.size, &g, err);
    if (st == NOOK_OK && g->n_tensors == 0 && !gguf_find(g, "general.architecture"))
        st = nk_fail(err, NOOK_EFORMAT, "not a model: no tensors and no general.architecture");
    gguf_free(g);
    nk_unmap(&m);
    return st;
}

/* ---- list ---- */

typedef struct walk { const nk_store *s; nk_store_entry *v; int n, cap; } walk;

static void add_entry(walk *w, const char *host, const char *ns, const char *model, const char *tag, const char *path) {
    char full[1024];
    nk_pfmt(full, sizeof full, "%s/%s/%s:%s", host, ns, model, tag);
    nk_name n;
    if (nk_name_parse(full, &n, NULL) != NOOK_OK) return;   /* temp files, junk */
    if (strcmp(n.host, host) || strcmp(n.ns, ns) || strcmp(n.model, model) || strcmp(n.tag, tag)) return;
    char *text = NULL;
    size_t len = 0;
    nook_error err = { 0 };
    nk_manifest m;
    if (read_small(path, NK_MANIFEST_MAX, &text, &len, &err) || nk_manifest_parse(text, len, &m, &err)) {
        nk_log(NK_LOG_WARN, "store: skipping %s: %s", path, err.msg);
        nk_free(text);
        return;
    }
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 16;
        nk_store_entry *v = nk_realloc(w->v, (size_t)nc * sizeof *v);
        if (!v) { nk_free(text); nk_manifest_free(&m); return; }
        w->v = v;
        w->cap = nc;
    }
    nk_store_entry *e = &w->v[w->n++];
    memset(e, 0, sizeof *e);
    e->n = n;
    nk_name_display(&n, e->name, sizeof e->name);
    char hex[65];
    nk_sha256_buf(text, len, hex, NULL);
    nk_pfmt(e->digest, sizeof e->digest, "sha256:%s", hex);
    e->size = m.config.size;
    for (int i = 0; i < m.n_layers; i++) e->size += m.layers[i].size;
    const nk_layer *ml = nk_manifest_find(&m, NK_MT_MODEL);
    if (ml) nk_pfmt(e->model_digest, sizeof e->model_digest, "%s", ml->digest);
    struct stat st;
    if (stat(path, &st) == 0) e->modified = (int64_t)st.st_mtime;
    nk_free(text);
    nk_manifest_free(&m);
}

/* Walks manifests/<host>/<ns>/<model>/<tag>, depth by depth. */
static void walk_dir(walk *w, const char *dir, int depth, const char **parts) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4400];
        nk_pfmt(p, sizeof p, "%s/%s", dir, e->d_name);
        parts[depth] = e->d_name;
        struct stat st;
        if (lstat(p, &st) != 0) continue;
        if (depth < 3 && S_ISDIR(st.st_mode)) walk_dir(w, p, depth + 1, parts);
        else if (depth == 3 && S_ISREG(st.st_mode)) add_entry(w, parts[0], parts[1], parts[2], parts[3], p);
    }
    closedir(d);
}

static int by_mtime(const void *a, const void *b) {
    const nk_store_entry *x = a, *y = b;
    if (x->modified != y->modified) return x->modified > y->modified ? -1 : 1;
    return strcmp(x->name, y->name);
}

nook_status nk_store_list(const nk_store *s, nk_store_entry **out, int *n, nook_error *err) {
    walk w = { .s = s };
    char dir[4200];
    const char *parts[4];
    nk_pfmt(dir, sizeof dir, "%s/manifests", s->root);
    walk_dir(&w, dir, 0, parts);
    if (w.n) qsort(w.v, (size_t)w.n, sizeof *w.v, by_mtime);
    *out = w.v;
    *n = w.n;
    return NOOK_OK;
}

/* ---- remove, copy, gc ---- */

/* Collects every digest any manifest references (config and layers). */
static char *referenced(const nk_store *s, size_t *n_out) {
    nk_store_entry *v = NULL;
    int n = 0;
    nk_store_list(s, &v, &n, NULL);
    size_t cap = 64, cnt = 0;
    char *set = nk_malloc(cap * 72);
    for (int i = 0; set && i < n; i++) {
        nk_manifest m;
        if (nk_store_read_manifest(s, &v[i].n, &m, NULL, 0, NULL) != NOOK_OK) continue;
        for (int j = -1; j < m.n_layers; j++) {
            if (cnt == cap) {
                char *ns2 = nk_realloc(set, cap * 2 * 72);
                if (!ns2) break;
                set = ns2;
                cap *= 2;
            }
            nk_pfmt(set + cnt++ * 72, 72, "%s", j < 0 ? m.config.digest : m.layers[j].digest);
        }
        nk_manifest_free(&m);
    }
    nk_free(v);
    *n_out = cnt;
    return set;
}

int nk_store_gc(nk_store *s, nook_error *err) {
    char p[4400];
    nk_pfmt(p, sizeof p, "%s/blobs/.nook-lock", s->root);
    int lfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) return 0;
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {   /* a pull or create is running: leave blobs */
        close(lfd);
        nk_log(NK_LOG_INFO, "store: a pull or create is running; unreferenced blobs stay until the next rm");
        return 0;
    }
    size_t nref = 0;
    char *ref = referenced(s, &nref);
    int removed = 0;
    nk_pfmt(p, sizeof p, "%s/blobs", s->root);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && ref && (e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, ".tmp-", 5) == 0) {
            /* a blob or quantization a dead process was writing (every live writer holds
             * the lock shared, and we hold it exclusive) */
            char f[4400];
            nk_pfmt(f, sizeof f, "%s/%s", p, nm);
            if (unlink(f) == 0) removed++;
            continue;
        }
        if (strncmp(nm, "sha256-", 7) != 0) continue;
        char dg[80];
        nk_pfmt(dg, sizeof dg, "sha256:%.64s", nm + 7);
        bool partial = strlen(nm) > 71;
        if (!nk_digest_valid(dg)) continue;
        bool used = false;
        for (size_t i = 0; i < nref && !used; i++) used = strcmp(ref + i * 72, dg) == 0;
        /* partial files of a download are kept (resumable) unless the blob is complete */
        if (used && !partial) continue;
        if (partial && !nk_store_has_blob(s, dg, NULL)) continue;
        char f[4400];
        nk_pfmt(f, sizeof f, "%s/%s", p, nm);
        if (unlink(f) == 0) removed++;
    }
    if (d) closedir(d);
    nk_free(ref);
    close(lfd);
    return removed;
}

/* Removes empty directories up from the manifest's (never the manifests root). */
static void prune_dirs(const nk_store *s, char *path) {
    char root[4200];
    nk_pfmt(root, sizeof root, "%s/manifests", s->root);
    for (int i = 0; i < 3; i++) {
        char *sl = strrchr(path, '/');
        if (!sl) return;
        *sl = 0;
        if (strcmp(path, root) == 0 || rmdir(path) != 0) return;
    }
}

nook_status nk_store_remove(nk_store *s, const nk_name *n, nook_error *err) {
    char p[4400], disp[512];
    nk_name_display(n, disp, sizeof disp);
    if (!manifest_path(s, n, p, sizeof p)) return nk_fail(err, NOOK_ENOTFOUND, "model '%s' not found", disp);
    if (unlink(p) != 0) return nk_fail(err, NOOK_EIO, "%s: %s", p, strerror(errno));
    prune_dirs(s, p);
    nk_store_gc(s, NULL);
    return NOOK_OK;
}

nook_status nk_store_copy(nk_store *s, const nk_name *from, const nk_name *to, nook_error *err) {
    nk_manifest m;
    nook_status st = nk_store_read_manifest(s, from, &m, NULL, 0, err);
    if (st) return st;
    st = nk_store_write_manifest(s, to, &m, err);
    nk_manifest_free(&m);
    return st;
}
