/* XNOR-popcount convolution of +-1 operands on CPUs (C, OpenMP): the CPU twin of xnor_conv2d.

   out = conv2d(s(x), s(w)) with zero padding, exactly (every value an integer of magnitude <= C kh kw,
   held exactly by float32 up to 2**24), so the same numbers as torch's float convolution of the signs
   on every CPU and at every instruction-set level. s(v) = +1 if v >= 0, else -1 (NaN too).

   Signs are packed along the channels into 64-bit words (bit 1 for +1; padding bits 0 in x and w, so
   they never disagree). A patch of output position p is kh * kw rows of CW words; a tap on the zero
   padding is a row of 0 words, which "disagree" with w exactly where w's bits are 1, so

       out[p][o] = nvalid(p) C - 2 (sum_words popcount(patch ^ w[o]) - sum_{padded taps t} pop_w[o][t])

   with pop_w[o][t] the number of 1 bits of w[o]'s tap t. Work: a tile of MR positions against
   OCHUNK output channels (registers of counts; the weights transposed, so that one patch word meets
   consecutive channels), the popcount by AVX-512 VPOPCNTQ, by AVX2 nibble lookups or scalar, chosen
   at run time; rows of (image, output row) shared among the threads. Built with native_weak_reset.c
   into one library (kernels/native.py); the costs: reports/perf-notes.md.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID omp_get_thread_num()
#else
#define THREAD_ID 0
#endif

#if defined(__x86_64__) && defined(__AVX2__)
#include <immintrin.h>
#endif

#define MR 8        /* positions per tile */
#define OCHUNK 16   /* output channels per tile: the weights are padded to a multiple (zeros) */

typedef struct {
    const float *x;  /* (N, C, H, W) */
    const float *w;  /* (O, C, KH, KW) */
    float *out;      /* (N, O, HO, WO), written */
    int64_t n, c, h, w_, o, kh, kw, ph, pw, sh, sw, ho, wo, threads;
    int64_t popcount; /* POPCOUNT_*: the version asked for (0: the widest this CPU runs) */
} XnorConv;

/* x[n] packed along channels: xp[p * cw + j], bit b of word j = s(x[n][64 j + b][p]) */
static void pack_image(const float *x, uint64_t *xp, int64_t c, int64_t hw, int64_t cw, uint64_t *row) {
    for (int64_t j = 0; j < cw; j++) {
        memset(row, 0, (size_t)hw * sizeof(uint64_t));
        for (int64_t b = 0; b < 64 && 64 * j + b < c; b++) {
            const float *plane = x + (64 * j + b) * hw;
#pragma omp simd
            for (int64_t p = 0; p < hw; p++) row[p] |= (uint64_t)(plane[p] >= 0.0f) << b;
        }
        for (int64_t p = 0; p < hw; p++) xp[p * cw + j] = row[p];
    }
}

/* w packed transposed, wt[k][o] (k = t CW + j, t = ky KW + kx; o padded to op with 0 words), and
   pop_w[t][o], the 1 bits of tap t of w[o] */
static void pack_weights(const XnorConv *a, uint64_t *wt, int64_t *pop_w, int64_t cw, int64_t op) {
    int64_t taps = a->kh * a->kw;
    memset(wt, 0, (size_t)(taps * cw * op) * sizeof(uint64_t));
    memset(pop_w, 0, (size_t)(taps * a->o) * sizeof(int64_t));
    for (int64_t o = 0; o < a->o; o++)
        for (int64_t ch = 0; ch < a->c; ch++)
            for (int64_t t = 0; t < taps; t++)
                if (a->w[(o * a->c + ch) * taps + t] >= 0.0f) {
                    wt[(t * cw + ch / 64) * op + o] |= (uint64_t)1 << (ch % 64);
                    pop_w[t * a->o + o]++;
                }
}

/* The patch of output position (oy, ox): kh kw rows of cw words (0 on the padding); its padded taps. */
static int64_t gather_patch(const XnorConv *a, const uint64_t *xp, int64_t oy, int64_t ox, int64_t cw,
                            uint64_t *patch, int64_t *padded) {
    int64_t n_padded = 0;
    for (int64_t ky = 0; ky < a->kh; ky++) {
        int64_t iy = oy * a->sh - a->ph + ky;
        for (int64_t kx = 0; kx < a->kw; kx++) {
            int64_t ix = ox * a->sw - a->pw + kx, t = ky * a->kw + kx;
            int inside = iy >= 0 && iy < a->h && ix >= 0 && ix < a->w_;
            const uint64_t *source = xp + (iy * a->w_ + ix) * cw;
            for (int64_t j = 0; j < cw; j++) patch[t * cw + j] = inside ? source[j] : 0;
            if (!inside) padded[n_padded++] = t;
        }
    }
    return n_padded;
}

/* counts[i][o0 + r] = sum_k popcount(patches[i][k] ^ wt[k][o0 + r]), i < MR, r < OCHUNK: three
   versions of one loop, the same integers (the widest the CPU runs is chosen at run time) */
static void chunk_counts_scalar(const uint64_t *patches, const uint64_t *wt, int64_t kwords, int64_t op, int64_t o0,
                                int64_t *counts) {
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < OCHUNK; r++) {
            uint64_t acc = 0;
            for (int64_t k = 0; k < kwords; k++)
                acc += (uint64_t)__builtin_popcountll(patches[i * kwords + k] ^ wt[k * op + o0 + r]);
            counts[i * op + o0 + r] = (int64_t)acc;
        }
}

#if defined(__x86_64__) && defined(__AVX2__)
/* popcount of 4 words by nibble lookup (Mula, Kurz, Lemire 2018), summed per word by vpsadbw */
static void chunk_counts_avx2(const uint64_t *patches, const uint64_t *wt, int64_t kwords, int64_t op, int64_t o0,
                              int64_t *counts) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    for (int half = 0; half < MR; half += 4)
        for (int v0 = 0; v0 < OCHUNK / 4; v0 += 2) {
            __m256i acc[4][2];
            for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = zero;
            for (int64_t k = 0; k < kwords; k++) {
                __m256i w[2] = {_mm256_loadu_si256((const __m256i *)(wt + k * op + o0 + 4 * v0)),
                                _mm256_loadu_si256((const __m256i *)(wt + k * op + o0 + 4 * v0 + 4))};
                for (int i = 0; i < 4; i++) {
                    __m256i p = _mm256_set1_epi64x((long long)patches[(half + i) * kwords + k]);
                    for (int v = 0; v < 2; v++) {
                        __m256i d = _mm256_xor_si256(p, w[v]);
                        __m256i c = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(d, low)),
                                                    _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi64(d, 4), low)));
                        acc[i][v] = _mm256_add_epi64(acc[i][v], _mm256_sad_epu8(c, zero));
                    }
                }
            }
            for (int i = 0; i < 4; i++)
                for (int v = 0; v < 2; v++)
                    _mm256_storeu_si256((__m256i *)(counts + (half + i) * op + o0 + 4 * (v0 + v)), acc[i][v]);
        }
}
#endif

#if defined(__x86_64__) && defined(__AVX512F__)
__attribute__((target("avx512vpopcntdq")))
static void chunk_counts_vpopcnt(const uint64_t *patches, const uint64_t *wt, int64_t kwords, int64_t op, int64_t o0,
                                 int64_t *counts) {
    __m512i acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int64_t k = 0; k < kwords; k++) {
        __m512i w0 = _mm512_loadu_si512(wt + k * op + o0), w1 = _mm512_loadu_si512(wt + k * op + o0 + 8);
        for (int i = 0; i < MR; i++) {
            __m512i p = _mm512_set1_epi64((long long)patches[i * kwords + k]);
            acc[i][0] = _mm512_add_epi64(acc[i][0], _mm512_popcnt_epi64(_mm512_xor_si512(p, w0)));
            acc[i][1] = _mm512_add_epi64(acc[i][1], _mm512_popcnt_epi64(_mm512_xor_si512(p, w1)));
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_si512(counts + i * op + o0, acc[i][0]);
        _mm512_storeu_si512(counts + i * op + o0 + 8, acc[i][1]);
    }
}
#endif

typedef void (*ChunkCounts)(const uint64_t *, const uint64_t *, int64_t, int64_t, int64_t, int64_t *);

enum { POPCOUNT_AUTO = 0, POPCOUNT_SCALAR = 1, POPCOUNT_AVX2 = 2, POPCOUNT_VPOPCNTQ = 3 };

/* The version asked for (POPCOUNT_AUTO: the widest this CPU runs; the library's level is this CPU's
   or narrower, kernels/native.py), NULL where this build or CPU lacks it; *chosen says which. */
static ChunkCounts chunk_counts_for(int64_t asked, int64_t *chosen) {
#if defined(__x86_64__) && defined(__AVX512F__)
    __builtin_cpu_init();
    if ((asked == POPCOUNT_AUTO || asked == POPCOUNT_VPOPCNTQ) && __builtin_cpu_supports("avx512vpopcntdq")) {
        *chosen = POPCOUNT_VPOPCNTQ;
        return chunk_counts_vpopcnt;
    }
#endif
#if defined(__x86_64__) && defined(__AVX2__)
    if (asked == POPCOUNT_AUTO || asked == POPCOUNT_AVX2) {
        *chosen = POPCOUNT_AVX2;
        return chunk_counts_avx2;
    }
#endif
    if (asked == POPCOUNT_AUTO || asked == POPCOUNT_SCALAR) {
        *chosen = POPCOUNT_SCALAR;
        return chunk_counts_scalar;
    }
    return NULL;
}

/* One output row (image n, row oy) into out. */
static void conv_row(const XnorConv *a, const uint64_t *xp, const uint64_t *wt, const int64_t *pop_w, int64_t cw,
                     int64_t op, int64_t n, int64_t oy, uint64_t *patches, int64_t *padded, int64_t *counts,
                     float *row_out, ChunkCounts chunk_counts) {
    int64_t taps = a->kh * a->kw, kwords = taps * cw;
    for (int64_t ox0 = 0; ox0 < a->wo; ox0 += MR) {
        int64_t m = a->wo - ox0 < MR ? a->wo - ox0 : MR, n_padded[MR];
        for (int64_t i = 0; i < m; i++)
            n_padded[i] = gather_patch(a, xp, oy, ox0 + i, cw, patches + i * kwords, padded + i * taps);
        memset(patches + m * kwords, 0, (size_t)((MR - m) * kwords) * sizeof(uint64_t)); /* counted, not written */
        for (int64_t o0 = 0; o0 < op; o0 += OCHUNK) chunk_counts(patches, wt, kwords, op, o0, counts);
        for (int64_t i = 0; i < m; i++) {
            int64_t *disagree = counts + i * op;
            for (int64_t q = 0; q < n_padded[i]; q++) {
                const int64_t *pop = pop_w + padded[i * taps + q] * a->o;
                for (int64_t o = 0; o < a->o; o++) disagree[o] -= pop[o];
            }
            int64_t valid = (taps - n_padded[i]) * a->c;
            for (int64_t o = 0; o < a->o; o++) row_out[o * a->wo + ox0 + i] = (float)(valid - 2 * disagree[o]);
        }
    }
    /* a row at a time into out: storing each position's channels there directly, a plane apart
       (4 KB for 32 x 32 images), took 3/4 of the time */
    for (int64_t o = 0; o < a->o; o++)
        memcpy(a->out + ((n * a->o + o) * a->ho + oy) * a->wo, row_out + o * a->wo, (size_t)a->wo * sizeof(float));
}

/* Scratch of one thread: a row of packed words, MR patches, their padded taps and counts. */
typedef struct { uint64_t *row, *patches; int64_t *padded, *counts; float *row_out; } Scratch;

static Scratch scratch_of(uint8_t *base, int64_t hw, int64_t kwords, int64_t taps, int64_t op) {
    Scratch s;
    s.row = (uint64_t *)base;
    s.patches = s.row + hw;
    s.padded = (int64_t *)(s.patches + MR * kwords);
    s.counts = s.padded + MR * taps;
    s.row_out = (float *)(s.counts + MR * op);
    return s;
}

/* The popcount version that ran (POPCOUNT_*) on success; -1 when memory could not be had (all of it is
   taken before the threads start); -2 when the version asked for is not in this build or CPU. */
int rramk_xnor_conv2d(const XnorConv *a) {
    int64_t cw = (a->c + 63) / 64, taps = a->kh * a->kw, hw = a->h * a->w_, kwords = taps * cw;
    int64_t threads = a->threads > 0 ? a->threads : 1, op = (a->o + OCHUNK - 1) / OCHUNK * OCHUNK;
    size_t per_thread = (size_t)(hw + MR * kwords + MR * taps + MR * op) * 8 + (size_t)(a->o * a->wo) * sizeof(float);
    int64_t chosen = 0;
    ChunkCounts chunk_counts = chunk_counts_for(a->popcount, &chosen);
    if (!chunk_counts) return -2;
    uint64_t *xp = malloc((size_t)(a->n * hw * cw) * sizeof(uint64_t));
    uint64_t *wt = malloc((size_t)(kwords * op) * sizeof(uint64_t));
    int64_t *pop_w = malloc((size_t)(a->o * taps) * sizeof(int64_t));
    uint8_t *scratch = malloc(per_thread * (size_t)threads);
    int failed = !xp || !wt || !pop_w || !scratch;
    if (!failed) {
        pack_weights(a, wt, pop_w, cw, op);
#pragma omp parallel num_threads(threads)
        {
            Scratch s = scratch_of(scratch + per_thread * (size_t)THREAD_ID, hw, kwords, taps, op);
#pragma omp for schedule(static)
            for (int64_t n = 0; n < a->n; n++) pack_image(a->x + n * a->c * hw, xp + n * hw * cw, a->c, hw, cw, s.row);
#pragma omp for collapse(2) schedule(static)
            for (int64_t n = 0; n < a->n; n++)
                for (int64_t oy = 0; oy < a->ho; oy++)
                    conv_row(a, xp + n * hw * cw, wt, pop_w, cw, op, n, oy, s.patches, s.padded, s.counts,
                             s.row_out, chunk_counts);
        }
    }
    free(xp); free(wt); free(pop_w); free(scratch);
    return failed ? -1 : (int)chosen;
}
