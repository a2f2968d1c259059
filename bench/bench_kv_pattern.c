/*
 * bench_kv_pattern.c: how fast two threads read one layer's K and V (N_KV rows of 2 KB
 * each, qwen3-0.6b's f16 cache rows; 8 layers' copies so that nothing is in L3) in the
 * access patterns a decode step could use, with W dependent FMAs per 64-byte line to
 * stand for the kernel's arithmetic between loads (W = 0: a plain read). Modes:
 *   0: thread 0 all of K, thread 1 all of V, in position order (the pairs today)
 *   1: each thread half the positions, a K row then a V row (a split over the length)
 *   2: each thread half of every K and V row (the split by heads)
 *   3: as 0, each thread two streams: positions [0, N/2) and [N/2, N) a row at a time
 *   4: as 0, with a software prefetch 8 KiB ahead
 * Prints the wall GB/s of the best of R passes and the CPU time of both threads for that
 * pass: on a shared machine the CPU time (stalls included) is the steadier figure.
 *   cc -O2 -mavx512f -mfma -pthread bench/bench_kv_pattern.c -o /tmp/bench_kv_pattern
 *   for m in 0 1 2 3 4; do /tmp/bench_kv_pattern $m 0 5; done
 * Arguments: MODE [W=0] [R=3]
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
static int N = 16384, L = 8, W = 0, MODE;
static const size_t ROW = 2048;
static unsigned char *K, *V;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static double tcpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct { int id; double cpu; float s; } arg;
#define WORK(x) for (int w_ = 0; w_ < W; w_++) x = _mm512_fmadd_ps(x, x, c);
static void *run(void *p) {
    arg *a = p; double c0 = tcpu();
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0; const __m512 c = _mm512_set1_ps(0.5f);
    for (int l = 0; l < L; l++) {
        const unsigned char *k = K + (size_t)l * N * ROW, *v = V + (size_t)l * N * ROW;
        if (MODE == 0) {          /* thread 0 all of K, thread 1 all of V */
            const unsigned char *b = a->id ? v : k;
            for (size_t i = 0; i < (size_t)N * ROW; i += 64) { s0 = _mm512_add_ps(s0, _mm512_load_ps((const float *)(b + i))); WORK(s1) }
        } else if (MODE == 1) {   /* half the positions each, K and V rows in turn (2 streams) */
            const size_t lo = (size_t)a->id * N / 2 * ROW, hi = lo + (size_t)N / 2 * ROW;
            for (size_t r = lo; r < hi; r += ROW) {
                for (size_t i = 0; i < ROW; i += 64) { s0 = _mm512_add_ps(s0, _mm512_load_ps((const float *)(k + r + i))); WORK(s1) }
                for (size_t i = 0; i < ROW; i += 64) { s2 = _mm512_add_ps(s2, _mm512_load_ps((const float *)(v + r + i))); WORK(s3) }
            }
        } else if (MODE == 2) {   /* half rows each (split by heads) */
            for (size_t r = 0; r < (size_t)N * ROW; r += ROW) {
                for (size_t i = a->id * ROW / 2; i < (a->id + 1) * ROW / 2; i += 64) { s0 = _mm512_add_ps(s0, _mm512_load_ps((const float *)(k + r + i))); WORK(s1) }
                for (size_t i = a->id * ROW / 2; i < (a->id + 1) * ROW / 2; i += 64) { s2 = _mm512_add_ps(s2, _mm512_load_ps((const float *)(v + r + i))); WORK(s3) }
            }
        } else if (MODE == 3) {   /* K-thread / V-thread, each two streams: positions [0,N/2) and [N/2,N) a row at a time */
            const unsigned char *b = a->id ? v : k; const size_t h = (size_t)N / 2 * ROW;
            for (size_t r = 0; r < h; r += ROW) {
                for (size_t i = 0; i < ROW; i += 64) { s0 = _mm512_add_ps(s0, _mm512_load_ps((const float *)(b + r + i))); WORK(s1) }
                for (size_t i = 0; i < ROW; i += 64) { s2 = _mm512_add_ps(s2, _mm512_load_ps((const float *)(b + h + r + i))); WORK(s3) }
            }
        } else if (MODE == 4) {   /* K-thread / V-thread, one stream, software prefetch P bytes ahead to L2 */
            const unsigned char *b = a->id ? v : k;
            for (size_t i = 0; i < (size_t)N * ROW; i += 64) { _mm_prefetch((const char *)b + i + 8192, _MM_HINT_T1); s0 = _mm512_add_ps(s0, _mm512_load_ps((const float *)(b + i))); WORK(s1) }
        }
    }
    float t[16]; _mm512_storeu_ps(t, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))); a->s = t[0];
    a->cpu = tcpu() - c0; return NULL;
}
int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODE [W] [R]\n", argv[0]);
        return 2;
    }
    MODE = atoi(argv[1]), W = argc > 2 ? atoi(argv[2]) : 0;
    const int R = argc > 3 ? atoi(argv[3]) : 3;
    size_t bytes = (size_t)L * N * ROW;
    K = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    V = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (K == MAP_FAILED || V == MAP_FAILED) return 1;
    madvise(K, bytes, MADV_HUGEPAGE); madvise(V, bytes, MADV_HUGEPAGE); memset(K, 1, bytes); memset(V, 1, bytes);
    double best = 1e9, bc = 0;
    for (int r = 0; r < R; r++) {
        pthread_t th[2]; arg a[2] = { { .id = 0 }, { .id = 1 } }; double t0 = now();
        for (int i = 0; i < 2; i++) pthread_create(&th[i], 0, run, &a[i]);
        for (int i = 0; i < 2; i++) pthread_join(th[i], 0);
        double t = now() - t0; if (t < best) best = t, bc = a[0].cpu + a[1].cpu;
    }
    printf("mode %d W %d: %.1f GB/s wall, %.2f ms/layer, cpu %.2f ms/layer\n", MODE, W, 2.0 * bytes / best / 1e9, best / L * 1e3, bc / L * 1e3);
    return 0;
}
