/*
 * test_simd.c: every SIMD kernel this CPU can run, called explicitly (not only the
 * one nk_tensor_init picks), against the plain-C reference on random data.
 *
 * Bounds: quantized dots compute the same integers as the reference, so they may
 * differ only by float accumulation order: |simd - ref| <= 1e-5 * sum|x_i*y_i|
 * (+1e-30). Float dots (F32/F16/BF16) accumulate in float lanes where the
 * reference uses double: |simd - ref| <= 2e-5 * sum|x_i*y_i|.
 * Q8_K's SIMD quantizer must give the reference's bytes exactly; Q8_0/Q8_1 follow
 * ggml's path for that architecture (x86: id = 127/amax; ARM NEON: id = 1/d; both
 * round ties to even), checked byte-exactly against a scalar model of it, and
 * within one code of the *_ref quantizer.
 *
 * On x86-64 the AVX levels run and the NEON ones report "not supported"; on AArch64
 * (tests/arm/run-qemu.sh runs this under qemu-aarch64) the other way round.
 */
#include "nk_test.h"
#include "tensor/quants.h"

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint32_t rnd_u32(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rnd_f(void) { return ((float)(rnd_u32() & 0xFFFFFF) / 16777216.0f - 0.5f) * 4.0f; }
static uint16_t rnd_scale(void) { return nk_fp32_to_fp16(rnd_f() * 0.01f); }

/* Random weight blocks: every code bit random, the fp16 scales finite. */
static void random_blocks(uint32_t type, void *buf, int nb) {
    const nk_type_traits *t = nk_type_get(type);
    uint8_t *p = buf;
    for (size_t i = 0; i < (size_t)nb * t->type_size; i++) p[i] = (uint8_t)rnd_u32();
    for (int b = 0; b < nb; b++) {
        void *blk = p + (size_t)b * t->type_size;
        switch (type) {
        case NK_TYPE_Q4_0: ((nk_block_q4_0 *)blk)->d = rnd_scale(); break;
        case NK_TYPE_Q4_1: ((nk_block_q4_1 *)blk)->d = rnd_scale(); ((nk_block_q4_1 *)blk)->m = rnd_scale(); break;
        case NK_TYPE_Q5_0: ((nk_block_q5_0 *)blk)->d = rnd_scale(); break;
        case NK_TYPE_Q5_1: ((nk_block_q5_1 *)blk)->d = rnd_scale(); ((nk_block_q5_1 *)blk)->m = rnd_scale(); break;
        case NK_TYPE_Q8_0: ((nk_block_q8_0 *)blk)->d = rnd_scale(); break;
        case NK_TYPE_Q2_K: ((nk_block_q2_K *)blk)->d = rnd_scale(); ((nk_block_q2_K *)blk)->dmin = rnd_scale(); break;
        case NK_TYPE_Q3_K: ((nk_block_q3_K *)blk)->d = rnd_scale(); break;
        case NK_TYPE_Q4_K: ((nk_block_q4_K *)blk)->d = rnd_scale(); ((nk_block_q4_K *)blk)->dmin = rnd_scale(); break;
        case NK_TYPE_Q5_K: ((nk_block_q5_K *)blk)->d = rnd_scale(); ((nk_block_q5_K *)blk)->dmin = rnd_scale(); break;
        case NK_TYPE_Q6_K: ((nk_block_q6_K *)blk)->d = rnd_scale(); break;
        default: break;
        }
    }
}

enum { MAXN = 256 * 33 };
static float fx[MAXN], fy[MAXN], dx[MAXN], dy[MAXN];
static uint8_t qx[MAXN * 4], qy[MAXN * 4];

static void test_vec_dots(int isa) {
    static const uint32_t types[] = {NK_TYPE_F32, NK_TYPE_F16, NK_TYPE_BF16, NK_TYPE_Q4_0, NK_TYPE_Q4_1,
        NK_TYPE_Q5_0, NK_TYPE_Q5_1, NK_TYPE_Q8_0, NK_TYPE_Q2_K, NK_TYPE_Q3_K, NK_TYPE_Q4_K, NK_TYPE_Q5_K, NK_TYPE_Q6_K};
    static const int nblocks[] = {1, 2, 3, 7, 16, 33};
    for (size_t k = 0; k < NK_ARRAY_LEN(types); k++) {
        const nk_type_traits *t = nk_type_get(types[k]);
        const nk_type_traits *a = nk_type_get((uint32_t)t->vec_dot_type);
        nk_vec_dot_fn f = nk_vec_dot_variant(types[k], isa);
        if (!f) { printf("  %s: no %s kernel\n", t->name, nk_isa_name(isa)); continue; }
        double worst = 0;
        for (size_t r = 0; r < NK_ARRAY_LEN(nblocks); r++) {
            /* float types: odd lengths too (no block structure) */
            int n = t->blck == 1 ? (int[]){1, 7, 33, 100, 1023, 4099}[r] : nblocks[r] * t->blck;
            for (int i = 0; i < n; i++) { fx[i] = rnd_f(); fy[i] = rnd_f() * 3.0f; }
            if (t->blck == 1) t->from_float_ref(fx, qx, n);
            else random_blocks(types[k], qx, n / t->blck);
            a->from_float_ref(fy, qy, n);
            t->to_float(qx, dx, n);
            a->to_float(qy, dy, n);
            double mag = 1e-30;
            for (int i = 0; i < n; i++) mag += fabs((double)dx[i] * dy[i]);
            float ref, got;
            t->vec_dot_ref(n, &ref, qx, qy);
            f(n, &got, qx, qy);
            double tol = (t->is_quantized ? 1e-5 : 2e-5) * mag;
            CHECK_MSG(fabs((double)got - ref) <= tol, "%s %s n=%d: %.8g vs ref %.8g (tol %g)",
                      nk_isa_name(isa), t->name, n, got, ref, tol);
            worst = fmax(worst, fabs((double)got - ref) / mag);
        }
        printf("  %-10s %-5s worst |simd-ref|/sum|xy| = %.2e\n", nk_isa_name(isa), t->name, worst);
    }
}

/* Scalar model of ggml's x86 Q8_0 quantizer: id = 127/amax, round half to even. */
static void model_q8_0_x86(const float *x, nk_block_q8_0 *y) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    y->d = nk_fp32_to_fp16(amax / 127.f);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < 32; j++) y->qs[j] = (int8_t)nearbyintf(x[j] * id);
}

/* Scalar model of ggml's ARM NEON Q8_0 quantizer: id = 1/d (d = amax/127, as the
 * reference), round half to even. */
static void model_q8_0_arm(const float *x, nk_block_q8_0 *y) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.f;
    y->d = nk_fp32_to_fp16(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) y->qs[j] = (int8_t)nearbyintf(x[j] * id);
}

static bool isa_is_arm(int isa) { return isa == NK_ISA_NEON || isa == NK_ISA_NEON_DOTPROD; }

static void test_quantizers(int isa) {
    const int n = 256 * 9;
    for (int rep = 0; rep < 5; rep++) {
        for (int i = 0; i < n; i++) fx[i] = rnd_f() * (rep == 3 ? 1e-3f : 1.0f);
        if (rep == 4) {
            /* Q8_K's scale takes the sign of the FIRST value of largest magnitude: per
             * 256-block a -4 and a +4 at random positions, in
             * either order, and one block where the largest value appears only once,
             * in the last lane */
            for (int b = 0; b < n / 256; b++) {
                const int p = (int)(rnd_u32() % 256), q = (int)(rnd_u32() % 256);
                fx[b * 256 + p] = (b & 1) ? 4.0f : -4.0f;
                if (q != p) fx[b * 256 + q] = (b & 1) ? -4.0f : 4.0f;
            }
            fx[255] = -5.0f;
        }
        if (rep == 2) {   /* exact ties: amax 127 makes id 1, so x.5 values tie */
            for (int i = 0; i < n; i++) fx[i] = (float)((int)(rnd_u32() % 254) - 127) + 0.5f;
            for (int b = 0; b < n / 32; b++) fx[b * 32 + 5] = (b & 1) ? 127.0f : -127.0f;
            for (int b = 0; b < n / 256; b++) fx[b * 256 + 9] = -127.0f;
        }
        if (rep == 0) {
            /* A block where id = 127/amax (x86) and id = 1/(amax/127) (ARM) differ in
             * the last bit and these x land on either side of a .5 tie: the two
             * models give different codes here, so each path is pinned to its own. */
            static const float tie_x[] = {0x1.b266c8p-8f, 0x1.6a0054p-7f, 0x1.facd4p-7f, 0x1.45cd18p-6f, 0x1.d69a06p-6f};
            for (int j = 0; j < 32; j++) fx[j] = rnd_f() * 0.1f;
            fx[0] = 0x1.1f56a8p-1f;
            for (size_t j = 0; j < NK_ARRAY_LEN(tie_x); j++) fx[1 + j] = tie_x[j];
            nk_block_q8_0 mx, ma;
            model_q8_0_x86(fx, &mx);
            model_q8_0_arm(fx, &ma);
            CHECK_MSG(memcmp(mx.qs, ma.qs, 32) != 0, "crafted block should separate the x86 and ARM Q8_0 paths");
        }
        /* Q8_K: byte-exact with the reference */
        nk_from_float_fn qk = nk_from_float_variant(NK_TYPE_Q8_K, isa);
        if (qk) {
            nk_quant_q8_K_ref(fx, qx, n);
            qk(fx, qy, n);
            CHECK_MSG(memcmp(qx, qy, nk_row_size(NK_TYPE_Q8_K, n)) == 0, "%s q8_K rep %d", nk_isa_name(isa), rep);
        }
        /* Q8_0 / Q8_1: byte-exact with the architecture's model, within one code of *_ref */
        nk_from_float_fn q0 = nk_from_float_variant(NK_TYPE_Q8_0, isa);
        nk_from_float_fn q1 = nk_from_float_variant(NK_TYPE_Q8_1, isa);
        if (q0 && q1) {
            q0(fx, qx, n);
            q1(fx, qy, n);
            const nk_block_q8_0 *b0 = (const nk_block_q8_0 *)qx;
            const nk_block_q8_1 *b1 = (const nk_block_q8_1 *)qy;
            int diff_codes = 0, bad = 0;
            for (int b = 0; b < n / 32; b++) {
                nk_block_q8_0 m, r;
                if (isa_is_arm(isa)) model_q8_0_arm(fx + 32 * b, &m);
                else model_q8_0_x86(fx + 32 * b, &m);
                nk_quant_q8_0_ref(fx + 32 * b, &r, 32);
                if (memcmp(&m, &b0[b], sizeof m) != 0) bad++;
                if (b1[b].d != m.d || memcmp(b1[b].qs, m.qs, 32) != 0) bad++;
                int sum = 0;
                for (int j = 0; j < 32; j++) sum += m.qs[j];
                float amax = 0;
                for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(fx[32 * b + j]));
                if (b1[b].s != nk_fp32_to_fp16(amax / 127.f * (float)sum)) bad++;   /* s = d * sum, d unrounded */
                if (r.d != m.d) bad++;
                for (int j = 0; j < 32; j++) {
                    if (abs(r.qs[j] - m.qs[j]) > 1) bad++;
                    diff_codes += r.qs[j] != m.qs[j];
                }
            }
            CHECK_MSG(bad == 0, "%s q8_0/q8_1 rep %d: %d mismatches", nk_isa_name(isa), rep, bad);
            if (rep == 2) CHECK_MSG(diff_codes > 0, "ties should round differently from roundf");
        }
    }
}

int main(void) {
    int tested = 0;
    for (int isa = NK_ISA_REF + 1; isa < NK_ISA_COUNT; isa++) {
        if (!nk_isa_supported(isa)) { printf("%s: not supported by this CPU, skipped\n", nk_isa_name(isa)); continue; }
        printf("%s:\n", nk_isa_name(isa));
        test_vec_dots(isa);
        test_quantizers(isa);
        tested++;
    }
    /* init installs the best supported level's kernel for each type */
    nk_tensor_init();
    const char *no_simd = getenv("NOOK_NO_SIMD");
    if (!(no_simd && *no_simd && strcmp(no_simd, "0"))) {
        int best = NK_ISA_REF;
        for (int isa = NK_ISA_COUNT - 1; isa > NK_ISA_REF; isa--)
            if (nk_isa_supported(isa)) { best = isa; break; }
        CHECK_STR(nk_tensor_isa(), nk_isa_name(best));
        /* per type: the kernel of the best level that has one (a level may leave a
         * type to a lower one, as neon-dotprod leaves the float dots to neon) */
        for (uint32_t t = 0; t < NK_TYPE_COUNT && best != NK_ISA_REF; t++) {
            const nk_type_traits *tr = nk_type_get(t);
            if (!tr) continue;
            nk_vec_dot_fn want_dot = tr->vec_dot_ref;
            nk_from_float_fn want_q = tr->from_float_ref;
            for (int isa = NK_ISA_REF + 1; isa <= best; isa++) {
                if (nk_vec_dot_variant(t, isa)) want_dot = nk_vec_dot_variant(t, isa);
                if (nk_from_float_variant(t, isa)) want_q = nk_from_float_variant(t, isa);
            }
            CHECK_MSG(tr->vec_dot == want_dot, "%s vec_dot not the best level's", tr->name);
            CHECK_MSG(tr->from_float == want_q, "%s from_float not the best level's", tr->name);
        }
        if (best != NK_ISA_REF) {
            CHECK(nk_type_get(NK_TYPE_Q4_K)->vec_dot == nk_vec_dot_variant(NK_TYPE_Q4_K, best));
            CHECK(nk_type_get(NK_TYPE_Q8_K)->from_float != nk_type_get(NK_TYPE_Q8_K)->from_float_ref);
        }
    } else {
        CHECK_STR(nk_tensor_isa(), "reference");
        CHECK(nk_type_get(NK_TYPE_Q4_K)->vec_dot == nk_type_get(NK_TYPE_Q4_K)->vec_dot_ref);
    }
    if (!tested) printf("no SIMD level supported here: only the dispatch was checked\n");
    NK_TEST_DONE();
}
