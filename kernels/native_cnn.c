/* The binary CNN's element-wise layers on CPUs (C, OpenMP): 2x2 max pooling (torch's max_pool2d(x, 2)
   bit for bit) and the sign with its straight-through mask (rramk/nn/binarize.py), each in one pass.

   Max pooling: each output is the maximum of its 2x2 window (stride 2; a last odd row or column is dropped, as
   torch's floor mode drops it), scanned row by row as torch's CPU kernel scans it, with its rule:
   a value replaces the maximum if it is greater or NaN, starting from -inf at the window's first
   position; so ties keep the first, NaN wins (the last NaN), an all -inf window points at its first.
   The position in the window (0..3) is kept in a byte for the backward, which sends each output's
   gradient to it (windows do not overlap: each input gets at most one) and 0 elsewhere.
   The sign: s(x) = +1.0 if x >= 0 else -1.0 (NaN -1), and where asked the mask |x| <= 1 (NaN 0) as bytes
   0/1. Built with the other native kernels into one library (kernels/native.py).
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const float *x;       /* (planes, h, w): forward input */
    float *out;           /* (planes, h / 2, w / 2): forward output */
    uint8_t *where;       /* (planes, h / 2, w / 2): position of the maximum in its window */
    const float *grad;    /* (planes, h / 2, w / 2): backward input */
    float *grad_x;        /* (planes, h, w): backward output */
    int64_t planes, h, w, threads;
} Pool;

static inline void take(float v, int k, float *m, int *at) {
    int better = (v > *m) | (v != v); /* torch: (val > maxval) || isnan(val) */
    *m = better ? v : *m;
    *at = better ? k : *at;
}

void rramk_max_pool2x2(const Pool *p) {
    int64_t ho = p->h / 2, wo = p->w / 2;
#pragma omp parallel for collapse(2) num_threads(p->threads) schedule(static)
    for (int64_t plane = 0; plane < p->planes; plane++)
        for (int64_t oy = 0; oy < ho; oy++) {
            const float *r0 = p->x + (plane * p->h + 2 * oy) * p->w, *r1 = r0 + p->w;
            float *out = p->out + (plane * ho + oy) * wo;
            uint8_t *where = p->where + (plane * ho + oy) * wo;
#pragma omp simd
            for (int64_t ox = 0; ox < wo; ox++) {
                float m = -INFINITY;
                int at = 0;
                take(r0[2 * ox], 0, &m, &at);
                take(r0[2 * ox + 1], 1, &m, &at);
                take(r1[2 * ox], 2, &m, &at);
                take(r1[2 * ox + 1], 3, &m, &at);
                out[ox] = m;
                where[ox] = (uint8_t)at;
            }
        }
}

void rramk_max_pool2x2_backward(const Pool *p) {
    int64_t ho = p->h / 2, wo = p->w / 2;
#pragma omp parallel for num_threads(p->threads) schedule(static)
    for (int64_t plane = 0; plane < p->planes; plane++) {
        float *plane_grad = p->grad_x + plane * p->h * p->w;
        if (p->h % 2) memset(plane_grad + (p->h - 1) * p->w, 0, (size_t)p->w * sizeof(float)); /* dropped row */
        for (int64_t oy = 0; oy < ho; oy++) {
            float *r0 = plane_grad + 2 * oy * p->w, *r1 = r0 + p->w;
            const float *g = p->grad + (plane * ho + oy) * wo;
            const uint8_t *where = p->where + (plane * ho + oy) * wo;
#pragma omp simd
            for (int64_t ox = 0; ox < wo; ox++) {
                int at = where[ox];
                float v = 0.0f + g[ox]; /* torch adds the gradient to a zero: -0 becomes +0 */
                r0[2 * ox] = at == 0 ? v : 0.0f;
                r0[2 * ox + 1] = at == 1 ? v : 0.0f;
                r1[2 * ox] = at == 2 ? v : 0.0f;
                r1[2 * ox + 1] = at == 3 ? v : 0.0f;
            }
            if (p->w % 2) r0[p->w - 1] = r1[p->w - 1] = 0.0f; /* dropped column */
        }
    }
}

/* out[i] = s(x[i]); inside[i] = |x[i]| <= 1 where inside is not NULL */
void rramk_sign_ste(const float *x, float *out, uint8_t *inside, int64_t n, int64_t threads) {
    if (inside) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            out[i] = x[i] >= 0.0f ? 1.0f : -1.0f;
            inside[i] = (uint8_t)(fabsf(x[i]) <= 1.0f);
        }
    } else {
#pragma omp parallel for simd num_threads(threads) schedule(static)
        for (int64_t i = 0; i < n; i++) out[i] = x[i] >= 0.0f ? 1.0f : -1.0f;
    }
}
