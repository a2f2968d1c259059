/*
 * sha256.c: SHA-256 through OpenSSL's libcrypto (EVP), for blob digests and the
 * egress ledger's body hashes. No hand-written hash (docs/dependencies.md).
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

nook_status nk_sha256_init(nk_sha256 *h, nook_error *err) {
    h->ctx = NULL;   /* a failed init leaves a handle that update/final/free accept */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) return nk_fail(err, NOOK_ENOMEM, "out of memory (sha256)");
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        return nk_fail(err, NOOK_EINTERNAL, "libcrypto: SHA-256 unavailable");
    }
    h->ctx = c;
    return NOOK_OK;
}

void nk_sha256_update(nk_sha256 *h, const void *data, size_t n) {
    if (h->ctx && n) EVP_DigestUpdate(h->ctx, data, n);
}

void nk_sha256_final(nk_sha256 *h, char hex[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    hex[0] = 0;
    if (!h->ctx) return;
    EVP_DigestFinal_ex(h->ctx, md, &len);
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
    nk_sha256_free(h);
}

void nk_sha256_free(nk_sha256 *h) {
    if (h->ctx) EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

nook_status nk_sha256_buf(const void *data, size_t n, char hex[65], nook_error *err) {
    nk_sha256 h;
    nook_status st = nk_sha256_init(&h, err);
    if (st) return st;
    nk_sha256_update(&h, data, n);
    nk_sha256_final(&h, hex);
    return NOOK_OK;
}

nook_status nk_sha256_file(const char *path, char hex[65], nook_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno));
    nk_sha256 h;
    nook_status st = nk_sha256_init(&h, err);
    if (st) { close(fd); return st; }
    enum { BUF = 1 << 20 };
    unsigned char *buf = nk_malloc(BUF);
    if (!buf) { nk_sha256_free(&h); close(fd); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    for (;;) {
        ssize_t r = read(fd, buf, BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { st = nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno)); break; }
        if (r == 0) break;
        nk_sha256_update(&h, buf, (size_t)r);
    }
    nk_free(buf);
    close(fd);
    if (st) { nk_sha256_free(&h); return st; }
    nk_sha256_final(&h, hex);
    return NOOK_OK;
}
