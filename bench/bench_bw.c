/*
 * bench_bw.c: read bandwidth from DRAM, the figure the decode bound divides by. T
 * threads each sum their own slice of one SIZE_MB buffer (2 MB pages, 64-byte AVX-512
 * loads, 4 accumulators), best of R passes (the minimum time filters out time stolen
 * by other processes on a shared machine; the machine's other jobs still take their
 * share of the memory bus).
 *   cc -O2 -std=c11 -D_GNU_SOURCE -mavx512f bench/bench_bw.c -lpthread -o /tmp/bench_bw && /tmp/bench_bw 2 1024 10
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct { const float *p; size_t n; float sum; } slice;

static void *reader(void *arg) {
    slice *s = arg;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < s->n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(s->p + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(s->p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(s->p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(s->p + i + 48));
    }
    s->sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const int T = argc > 1 ? atoi(argv[1]) : 2, R = argc > 3 ? atoi(argv[3]) : 10;
    const size_t bytes = (size_t)(argc > 2 ? atoi(argv[2]) : 1024) << 20;
    if (T < 1 || T > 64) return 2;
    float *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 1;
    (void)madvise(buf, bytes, MADV_HUGEPAGE);
    memset(buf, 1, bytes);
    pthread_t th[64];
    slice sl[64];
    const size_t per = bytes / sizeof(float) / (size_t)T / 64 * 64;
    double best = 1e30;
    for (int r = 0; r < R; r++) {
        const double t0 = now();
        for (int i = 0; i < T; i++) {
            sl[i] = (slice){ buf + (size_t)i * per, per, 0 };
            pthread_create(&th[i], NULL, reader, &sl[i]);
        }
        for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
        const double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("%d threads, %zu MiB: %.1f GB/s (best of %d)\n", T, bytes >> 20, (double)per * T * 4 / best / 1e9, R);
    return 0;
}
