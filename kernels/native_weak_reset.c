/* Fused CPU kernels of the weak-RESET device update and of the optimizer step (C, OpenMP).

   The CPU twin of kernels/weak_reset.py and kernels/weak_reset_adam.py: the same per-synapse
   arithmetic in the same order, so the same bits as the PyTorch reference
   (rramk/device/weak_reset.py, rramk/device/weak_reset_adam.py). Built at first use by
   kernels/native.py with the C compiler torch.compile also needs, with -ffp-contract=off (no
   multiply-add is contracted) and without -ffast-math; the layout constants (streams.py) come
   in as -D definitions, so that rramk.device.streams stays the one place that names them.

   Work is done in blocks of BLOCK synapses, stage by stage, each stage a loop the compiler
   vectorizes (Philox4x32-10 on 16 lanes with AVX-512): the pulse counts (from Adam, for the
   optimizer step), the pink window of the pulsed device of the synapses that are pulsed (a synapse
   without pulses keeps both pink terms; in a block with few pulsed synapses they are compacted so
   that the others draw no window), then both devices' D2D parameters, RTN step, state, pink and
   weight. Threads take contiguous ranges of blocks. The refresh condition is a loop of its own.
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef STREAM_D2D
#error "build through kernels/native.py (the layout constants come from rramk.device.streams)"
#endif

#define BLOCK 64
#define VECTOR 16 /* lanes of a 512-bit vector of 32-bit words */
#define CYCLE_FIELD ((uint32_t)MAX_CYCLE << CYCLE_SHIFT)
#define UNIFORM_SCALE 4.6566127342e-10f /* tl.uint_to_uniform_float's scale */

typedef struct {
    /* tensors (NULL where the operation has none) */
    const int32_t *pulses;   /* (N,) update: signed pulse counts */
    const float *grad;       /* (N,) optimizer step: straight-through gradient */
    float *exp_avg;          /* (N,) optimizer step: Adam moments, updated in place */
    float *exp_avg_sq;
    int32_t *state;          /* (2, N) packed words, updated in place */
    float *pink;             /* (2, N) pink terms, updated in place */
    int8_t *weights;         /* (N,) written */
    float *log_r;            /* (2, N) written when not NULL */
    const float *table;      /* (7, table_size) D2D quantiles (soft bounds: 7 + POWER_ROWS rows) */
    const float *rtn_flip;   /* (2, RTN_TABLE_SIZE) P(flip) after n pulses */
    const float *taps;       /* (4 * n_blocks, 4) pink taps per window position and block shift */
    float alpha;             /* pink scale */
    float adam[9];           /* beta1, 1 - beta1, beta2, 1 - beta2, 1 / (1 - beta1^k), 1 / (1 - beta2^k),
                                -lr_pulses, eps, max_pulses */
    int64_t table_size, order, n_blocks, numel, threads;
    int64_t pink_on, rtn_on, saturation_on, cycles;
    uint64_t seed, update;
    int64_t offset; /* flat index of the first synapse given (the Philox counter c0 of synapse i is offset + i) */
    uint8_t *due;     /* (N,) refresh condition: written when not NULL (then nothing else is done) */
    float keep;       /* refresh: a device counts as used up at t >= keep * t_star (1 - margin; 1 for past_t_star) */
    int64_t due_all;  /* refresh: 1: both devices used up (window), 0: either (past_t_star) */
    int64_t family;   /* the device family: 0 two slopes (HfOx), 1 soft bounds, 2 bidirectional (rows ROW_POWER..) */
    int64_t pair_row; /* the d2d_pair knob: row of the normal scores (then rho, s), 0: off (rramk.device.model_tables) */
} Launch;

/* Philox4x32-10 (rramk/device/philox.py, tl.philox): key (k0, k1), counter (c0..c3); the ten
   rounds written out, so that a loop calling it has no inner loop and vectorizes. The words live in
   64-bit lanes (their low 32 bits): a multiplication then reads its factor's low half as it is, and
   the high garbage a word gathers from its xors never reaches a product or an output (2x faster than
   32-bit lanes, whose products need widening and shuffles; reports/perf-notes.md). */
#define PHILOX_ROUND(r)                                                                          \
    do {                                                                                         \
        uint64_t pb = (x2 & 0xFFFFFFFFull) * 0xCD9E8D57ull;                                      \
        uint64_t pa = (x0 & 0xFFFFFFFFull) * 0xD2511F53ull;                                      \
        uint64_t n0 = (pb >> 32) ^ x1 ^ (uint64_t)(uint32_t)(y0 + (r) * 0x9E3779B9u);            \
        uint64_t n2 = (pa >> 32) ^ x3 ^ (uint64_t)(uint32_t)(y1 + (r) * 0xBB67AE85u);            \
        x1 = pb;                                                                                 \
        x3 = pa;                                                                                 \
        x0 = n0;                                                                                 \
        x2 = n2;                                                                                 \
    } while (0)
#define PHILOX(k0_, k1_, c0_, c1_, c2_, c3_, o0, o1, o2, o3)                                     \
    do {                                                                                         \
        uint64_t x0 = (uint32_t)(c0_), x1 = (uint32_t)(c1_), x2 = (uint32_t)(c2_), x3 = (uint32_t)(c3_); \
        uint32_t y0 = (k0_), y1 = (k1_);                                                         \
        PHILOX_ROUND(0u); PHILOX_ROUND(1u); PHILOX_ROUND(2u); PHILOX_ROUND(3u);                   \
        PHILOX_ROUND(4u); PHILOX_ROUND(5u); PHILOX_ROUND(6u); PHILOX_ROUND(7u);                   \
        PHILOX_ROUND(8u); PHILOX_ROUND(9u);                                                       \
        o0 = (uint32_t)x0; o1 = (uint32_t)x1; o2 = (uint32_t)x2; o3 = (uint32_t)x3;              \
    } while (0)

/* tl.uint_to_uniform_float: the word as int32 x, folded to x >= 0 ? x : -x - 1, times the scale. */
static inline float uniform(uint32_t word) {
    int32_t x = (int32_t)word;
    return (float)(x ^ (x >> 31)) * UNIFORM_SCALE; /* x < 0: ~x = -x - 1 (arithmetic shift) */
}

/* (h + 1/2) / 2^16 for a 16-bit integer h. */
static inline float uniform16(uint32_t half) { return ((float)half + 0.5f) * (1.0f / 65536.0f); }

/* Pulse counts of an optimizer step (rramk/device/weak_reset_adam.py: adam_pulses), moments in place. */
static void adam_pulses(const Launch *L, int64_t first, int count, int32_t *n) {
    const float b1 = L->adam[0], omb1 = L->adam[1], b2 = L->adam[2], omb2 = L->adam[3];
    const float bc1 = L->adam[4], bc2 = L->adam[5], neg_lr = L->adam[6], eps = L->adam[7], maxp = L->adam[8];
    const float *grad = L->grad + first;
    float *ma = L->exp_avg + first, *va = L->exp_avg_sq + first;
#pragma omp simd
    for (int i = 0; i < count; i++) {
        float g = grad[i];
        float m = ma[i] * b1 + g * omb1;
        float v = va[i] * b2 + (g * g) * omb2;
        ma[i] = m;
        va[i] = v;
        float u = (neg_lr * (m * bc1)) / (sqrtf(v * bc2) + eps);
        float c = u < -maxp ? -maxp : (u > maxp ? maxp : u);
        n[i] = u == u ? (int32_t)rintf(c) : 0; /* round half to even; a NaN gives no pulse */
    }
}

/* BLb's D2D word b coupled to BL's a by the d2d_pair knob (rramk/device/weak_reset.py: paired_words): each
   10-bit index of b becomes the largest i with Z[i] <= rho Z[index of a] + s Z[index of b], by a 10-step
   binary search (S = 2**10 scores Z, then rho and s, at row pair_row of the table). */
static inline __attribute__((always_inline)) uint32_t paired_word(const Launch *L, uint32_t a, uint32_t b) {
    const int64_t S = L->table_size;
    const uint32_t mask = (uint32_t)S - 1;
    const float *Z = L->table + L->pair_row * S, rho = Z[S], s = Z[S + 1];
#pragma GCC unroll 3
    for (int shift = 0; shift < 30; shift += 10) {
        float target = rho * Z[(a >> shift) & mask] + s * Z[(b >> shift) & mask];
        uint32_t q = 0;
#pragma GCC unroll 10
        for (int k = 1; k <= 10; k++) {
            uint32_t step = (uint32_t)(1024 >> k); /* pairing needs S = 2**10 (model_launch_args checks) */
            q = Z[q + step] <= target ? q + step : q;
        }
        b = (b & ~(mask << shift)) | (q << shift);
    }
    return b;
}

/* The devices of one side: new state word, pink term and ln R (weak_reset_update's loop body). */
static inline __attribute__((always_inline)) void device_side(const Launch *L, const int family, const int rtn_on, const int saturation_on, const int read, uint32_t da, uint32_t db, uint32_t ca, uint32_t cb, uint32_t flip_word,
                               uint32_t amplitude_word, uint32_t word, float pink_old, int32_t n_side, float fresh,
                               int32_t n_signed, uint32_t step0, uint32_t step1, const int bits,
                               uint32_t *word_out, float *pink_out, float *log_r_out) {
    const int64_t S = L->table_size;
    const uint32_t mask = (uint32_t)S - 1;
    const float *T = L->table;
    float m1 = T[ROW_M1 * S + (da & mask)];
    float t_star = T[ROW_T_STAR * S + ((da >> 10) & mask)];
    float c1 = T[ROW_C1 * S + ((ca >> 20) & mask)];
    float m2_drawn = T[ROW_M2 * S + (db & mask)];
    float m2 = saturation_on ? m2_drawn : m1;
    float ln_r0 = T[ROW_LN_R0 * S + ((cb >> 10) & mask)];
    float a_rtn = T[ROW_A_RTN * S + ((db >> 20) & mask)];
    int32_t t = (int32_t)(word & PULSES_MASK) + n_side;
    uint32_t s = (word >> RTN_BIT) & 1u;
    int32_t n_table = n_side < RTN_TABLE_SIZE - 1 ? n_side : RTN_TABLE_SIZE - 1;
    float p_flip = L->rtn_flip[s * RTN_TABLE_SIZE + n_table];
    uint32_t flips = (uint32_t)(rtn_on && !read) & (uint32_t)(uniform(flip_word) < p_flip); /* a read flips nothing */
    s ^= flips;
    float amplitude = uniform16(amplitude_word & 0xFFFFu) * (uniform16(amplitude_word >> 16) * a_rtn);
    float w_rtn = (((uint32_t)rtn_on & s) == 1u) ? amplitude : 0.0f;
    float tf = (float)t;
    float w_mean;
    if (family == 2) { /* bidirectional: the stored displacement moves (rramk/device/weak_reset.py: bidirectional_step);
                          m1 = rate_up, t_star = rate_down, c1 = g_min, m2 = g_max, ln_r0 = g0 */
        const int up = n_signed > 0;
        float c = 0.0f;
#pragma GCC unroll 16
        for (int b = 0; b < bits; b++) { /* bits: a constant of the variant (unrolled: the lane loop vectorizes) */
            float e = up ? T[(ROW_POWER + b) * S + (da & mask)] : T[(ROW_POWER + STEP_BITS + b) * S + ((da >> 10) & mask)];
            c = ((n_side >> b) & 1) ? c + e * (1.0f - c) : c;
        }
        float s_up = T[(ROW_POWER + 2 * STEP_BITS) * S + (db & mask)];
        float s_down = T[(ROW_POWER + 2 * STEP_BITS + 1) * S + ((ca >> 20) & mask)];
        float target = up ? s_up - ln_r0 : s_down - ln_r0;
        float rate = up ? m1 : t_star;
        float step = saturation_on ? (target - pink_old) * c : (target * rate) * (float)n_side;
        float noise = (L->alpha * ((uniform(step0) + uniform(step1)) - 1.0f)) * fabsf(step);
        float moved = pink_old + (step + noise);
        float lo = c1 - ln_r0, hi = m2_drawn - ln_r0;
        float above = moved > lo ? moved : lo;
        fresh = saturation_on ? (above < hi ? above : hi) : moved;
        w_mean = 0.0f;
    } else if (family == 1) { /* soft bounds: m1 = rate, m2 = g_max, ln_r0 = g0 (rramk/device/weak_reset.py: soft_bounds_mean) */
        float window = m2_drawn - ln_r0, c = 0.0f;
#pragma GCC unroll 20
        for (int b = 0; b < bits; b++) { /* bits: a constant of the variant (unrolled: the lane loop vectorizes) */
            float e = T[(ROW_POWER + b) * S + (da & mask)]; /* 1 - (1 - rate)^(2^b) */
            c = ((t >> b) & 1) ? c + e * (1.0f - c) : c;
        }
        w_mean = saturation_on ? window * c : (window * m1) * tf;
    } else {
        w_mean = tf < t_star ? m1 * tf + c1 : m2 * tf + (t_star * (m1 - m2) + c1);
    }
    float w_pink = n_side > 0 ? fresh : pink_old;
    *log_r_out = ln_r0 + ((w_mean + w_pink) + w_rtn);
    *pink_out = w_pink;
    *word_out = (word & CYCLE_FIELD) | (uint32_t)t | (s << RTN_BIT);
}

/* Both devices of the synapses first .. first + count - 1: D2D parameters, RTN step, state, pink, weight.
   ``read``: only ln R, as the last update left it (no flip, nothing stored but ln R; L->update is then the last
   update's index). ``cycles``, ``store_log_r`` and ``read`` are constants at each call, so that each variant is
   a loop without branches. */
static inline __attribute__((always_inline)) void both_devices(const Launch *L, int64_t first, int count,
                                                               const int32_t *n, const float *fresh,
                                                               const int cycles, const int store_log_r,
                                                               const int read, const int family, const int bits,
                                                               const int pair) {
    const int64_t N = L->numel;
    const uint32_t k0 = (uint32_t)L->seed, k1 = (uint32_t)(L->seed >> 32);
    const uint32_t update_lo = (uint32_t)L->update, update_hi = (uint32_t)(L->update >> 32);
    const int rtn_on = (int)L->rtn_on, saturation_on = (int)L->saturation_on;
    uint32_t *state_bl = (uint32_t *)L->state + first, *state_blb = (uint32_t *)L->state + N + first;
    float *pink_bl = L->pink + first, *pink_blb = L->pink + N + first;
    int8_t *weights = L->weights + first;
    float *log_r_bl = L->log_r + first, *log_r_blb = L->log_r + N + first;
#pragma omp simd
    for (int i = 0; i < count; i++) {
        uint32_t index = (uint32_t)(L->offset + first + i);
        uint32_t word_bl = state_bl[i], word_blb = state_blb[i];
        uint32_t d0, d1, d2, d3, c0, c1, c2, c3, r0, r1, r2, r3;
        PHILOX(k0, k1, index, 2u * STREAM_D2D, 0u, 0u, d0, d1, d2, d3); /* both devices' D2D parameters */
        if (pair) { /* the d2d_pair knob: BLb's indices coupled to BL's */
            d2 = paired_word(L, d0, d2);
            d3 = paired_word(L, d1, d3);
        }
        if (cycles) { /* c1 and R0 of the synapse's SET cycle */
            PHILOX(k0, k1, index, 2u * STREAM_D2D, (word_bl >> CYCLE_SHIFT) & MAX_CYCLE, 0u, c0, c1, c2, c3);
            if (pair) {
                c2 = paired_word(L, c0, c2);
                c3 = paired_word(L, c1, c3);
            }
        } else {
            c0 = d0; c1 = d1; c2 = d2; c3 = d3;
        }
        PHILOX(k0, k1, index, 2u * STREAM_RTN, update_lo, update_hi, r0, r1, r2, r3); /* both devices' RTN draws */
        uint32_t s0 = 0u, s1 = 0u, s2, s3;
        if (family == 2) PHILOX(k0, k1, index, 2u * STREAM_STEP, update_lo, update_hi, s0, s1, s2, s3); /* BL's step noise */
        /* bidirectional: BL takes |n| pulses of n's sign, BLb (the reference) none */
        int32_t n_bl = family == 2 ? (n[i] < 0 ? -n[i] : n[i]) : (n[i] > 0 ? n[i] : 0);
        int32_t n_blb = family == 2 ? 0 : (n[i] < 0 ? -n[i] : 0);
        uint32_t new_bl, new_blb;
        float p_bl, p_blb, lr_bl, lr_blb;
        device_side(L, family, rtn_on, saturation_on, read, d0, d1, c0, c1, r0, r2, word_bl, pink_bl[i], n_bl, fresh[i],
                    n[i], s0, s1, bits, &new_bl, &p_bl, &lr_bl);
        device_side(L, family, rtn_on, saturation_on, read, d2, d3, c2, c3, r1, r3, word_blb, pink_blb[i], n_blb, fresh[i],
                    0, s0, s1, bits, &new_blb, &p_blb, &lr_blb);
        if (!read) {
            state_bl[i] = new_bl;
            state_blb[i] = new_blb;
            pink_bl[i] = p_bl;
            pink_blb[i] = p_blb;
            weights[i] = lr_bl >= lr_blb ? 1 : -1;
        }
        if (store_log_r) {
            log_r_bl[i] = lr_bl;
            log_r_blb[i] = lr_blb;
        }
    }
}

/* Apply the pulse counts n of the synapses first .. first + count - 1 (count <= BLOCK). */
static void apply_pulses(const Launch *L, int64_t first, int count, const int32_t *n) {
    const int64_t N = L->numel;
    const uint32_t k0 = (uint32_t)L->seed, k1 = (uint32_t)(L->seed >> 32);
    const uint32_t *state_bl = (uint32_t *)L->state + first, *state_blb = (uint32_t *)L->state + N + first;
    float fresh[BLOCK];
    for (int i = 0; i < count; i++) fresh[i] = 0.0f;

    if (L->pink_on && L->family != 2) { /* the bidirectional family has no pink window (its float is its state) */
        /* the window's lanes: synapse, index, pulsed side, t after the pulses, cycle, sum */
#define WINDOW_LANE(j, i)                                                                        \
    do {                                                                                         \
        uint32_t word_ = n[i] < 0 ? state_blb[i] : state_bl[i];                                  \
        lane[j] = (i);                                                                           \
        index[j] = (uint32_t)(L->offset + first + (i));                                          \
        side[j] = n[i] < 0;                                                                      \
        t_pulsed[j] = (int32_t)(word_ & PULSES_MASK) + (n[i] < 0 ? -n[i] : n[i]);                \
        cycle[j] = L->cycles ? (state_bl[i] >> CYCLE_SHIFT) & MAX_CYCLE : 0u;                    \
        acc[j] = 0.0f;                                                                           \
    } while (0)
        int lane[BLOCK];
        uint32_t index[BLOCK], side[BLOCK], cycle[BLOCK];
        int32_t t_pulsed[BLOCK];
        float acc[BLOCK];
        int pulsed = 0;
        for (int i = 0; i < count; i++) pulsed += n[i] != 0;
        const int dense = 4 * pulsed >= 3 * count;
        if (dense) {
            /* most lanes pulsed (training): every lane in place, a loop that vectorizes; an unpulsed lane's
               window is drawn and not used (its fresh term stays 0) */
#pragma omp simd
            for (int i = 0; i < count; i++) WINDOW_LANE(i, i);
            pulsed = count;
        } else { /* few pulsed: compacted, so that unpulsed synapses draw no window */
            pulsed = 0;
            for (int i = 0; i < count; i++) {
                if (n[i] == 0) continue;
                WINDOW_LANE(pulsed, i);
                pulsed++;
            }
        }
#undef WINDOW_LANE
        /* pad to whole vectors with copies of lane 0 (results unused): no scalar remainder loop */
        int padded = (pulsed + VECTOR - 1) / VECTOR * VECTOR;
        for (int j = pulsed; j < padded; j++) {
            index[j] = index[0]; side[j] = side[0]; t_pulsed[j] = t_pulsed[0]; cycle[j] = cycle[0]; acc[j] = 0.0f;
        }
        const int32_t order = (int32_t)L->order;
        for (int b = 0; b < L->n_blocks; b++) { /* blocks in order, words in order: the kernel's sum */
            /* taps[4 q + shift] of word q: the same for every lane, selected by the lane's shift (no gather) */
            float tap[4][4];
            for (int q = 0; q < 4; q++)
                for (int k = 0; k < 4; k++) tap[q][k] = L->taps[16 * b + 4 * q + k];
#pragma omp simd
            for (int j = 0; j < padded; j++) {
                int32_t oldest = t_pulsed[j] - order;
                int32_t block = (oldest >> 2) + b; /* floor((t - order) / 4) + b */
                int32_t shift = oldest & 3;
                uint32_t w0, w1, w2, w3;
                PHILOX(k0, k1, index[j], 2u * STREAM_PINK + side[j], (uint32_t)(block > 0 ? block : 0), cycle[j],
                       w0, w1, w2, w3);
                int happened = block >= 0; /* pulses j <= 0 have u_j = 0 */
#define TAP(q) (shift == 0 ? tap[q][0] : shift == 1 ? tap[q][1] : shift == 2 ? tap[q][2] : tap[q][3])
                float a = acc[j];
                a = a + TAP(0) * (happened ? uniform(w0) : 0.0f);
                a = a + TAP(1) * (happened ? uniform(w1) : 0.0f);
                a = a + TAP(2) * (happened ? uniform(w2) : 0.0f);
                a = a + TAP(3) * (happened ? uniform(w3) : 0.0f);
#undef TAP
                acc[j] = a;
            }
        }
        if (dense) {
#pragma omp simd
            for (int i = 0; i < count; i++) fresh[i] = n[i] != 0 ? L->alpha * acc[i] : 0.0f;
        } else {
            for (int j = 0; j < pulsed; j++) fresh[lane[j]] = L->alpha * acc[j];
        }
    }

    /* each (cycles, store_log_r, read, family, bits) a loop of its own: the flags are constants in it. bits: how many
       bits of t (soft bounds) or |n| (bidirectional) the composition runs over, from the block's largest (the
       higher bits are 0 and would leave c as it is): a narrow variant for the usual case, the full one else */
#define BOTH_DEVICES_PAIRED(F, B, P)                                                                              \
    do {                                                                                                         \
        if (!L->pulses && !L->grad) { /* a read */                                                               \
            if (L->cycles) both_devices(L, first, count, n, fresh, 1, 1, 1, F, B, P);                            \
            else both_devices(L, first, count, n, fresh, 0, 1, 1, F, B, P);                                      \
        } else if (L->cycles) {                                                                                  \
            if (L->log_r) both_devices(L, first, count, n, fresh, 1, 1, 0, F, B, P);                             \
            else both_devices(L, first, count, n, fresh, 1, 0, 0, F, B, P);                                      \
        } else {                                                                                                 \
            if (L->log_r) both_devices(L, first, count, n, fresh, 0, 1, 0, F, B, P);                             \
            else both_devices(L, first, count, n, fresh, 0, 0, 0, F, B, P);                                      \
        }                                                                                                        \
    } while (0)
#define BOTH_DEVICES(F, B) BOTH_DEVICES_PAIRED(F, B, 0)
    if (L->family == 0 && L->pair_row) { /* the d2d_pair knob: variants of their own (HfOx only) */
        BOTH_DEVICES_PAIRED(0, 0, 1);
    } else if (L->family == 0) {
        BOTH_DEVICES(0, 0);
    } else {
        uint32_t largest = 0; /* the largest t after the pulses (soft bounds) or |n| (bidirectional) of the block */
        for (int i = 0; i < count; i++) {
            uint32_t magnitude = (uint32_t)(n[i] < 0 ? -n[i] : n[i]);
            uint32_t t_bl = (state_bl[i] & PULSES_MASK) + magnitude, t_blb = (state_blb[i] & PULSES_MASK) + magnitude;
            uint32_t need = L->family == 2 ? magnitude : (t_bl > t_blb ? t_bl : t_blb);
            largest = need > largest ? need : largest;
        }
        if (L->family == 2) {
            if (largest < 16u) BOTH_DEVICES(2, 4); else BOTH_DEVICES(2, STEP_BITS);
        } else {
            if (largest < 4096u) BOTH_DEVICES(1, 12); else BOTH_DEVICES(1, POWER_ROWS);
        }
    }
#undef BOTH_DEVICES
#undef BOTH_DEVICES_PAIRED
}

/* The synapses begin .. end - 1, block by block. */
static void update_range(const Launch *L, int64_t begin, int64_t end) {
    int32_t n[BLOCK];
    for (int64_t first = begin; first < end; first += BLOCK) {
        int count = (int)(end - first < BLOCK ? end - first : BLOCK);
        if (L->grad) {
            adam_pulses(L, first, count, n);
        } else if (L->pulses) {
            for (int i = 0; i < count; i++) n[i] = L->pulses[first + i];
        } else { /* a read */
            for (int i = 0; i < count; i++) n[i] = 0;
        }
        apply_pulses(L, first, count, n);
    }
}

/* The refresh condition of the synapses begin .. end - 1 (rramk/device/refresh.py: refresh_due):
   a device is used up at t >= keep * t_star, with t its pulses since the last SET and t_star its own
   of cycle 0 (from the D2D call of cycle 0, as the update draws it); a synapse is due when either
   device is used up (due_all 0: past_t_star) or both are (due_all 1: window). keep * t_star is the
   reference's float32 product (keep = 1: t_star itself). */
static void due_range(const Launch *L, int64_t begin, int64_t end) {
    const int64_t N = L->numel, S = L->table_size;
    const uint32_t mask = (uint32_t)S - 1;
    const float *t_star = L->table + ROW_T_STAR * S;
    const uint32_t k0 = (uint32_t)L->seed, k1 = (uint32_t)(L->seed >> 32);
    const uint32_t *state_bl = (const uint32_t *)L->state, *state_blb = (const uint32_t *)L->state + N;
    const float keep = L->keep;
    const int all = (int)L->due_all;
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        uint32_t d0, d1, d2, d3;
        PHILOX(k0, k1, (uint32_t)(L->offset + i), 2u * STREAM_D2D, 0u, 0u, d0, d1, d2, d3);
        if (L->pair_row) d2 = paired_word(L, d0, d2); /* BLb's t* under the d2d_pair knob */
        float limit_bl = keep * t_star[(d0 >> 10) & mask], limit_blb = keep * t_star[(d2 >> 10) & mask];
        int used_bl = (float)(int32_t)(state_bl[i] & PULSES_MASK) >= limit_bl;
        int used_blb = (float)(int32_t)(state_blb[i] & PULSES_MASK) >= limit_blb;
        L->due[i] = (uint8_t)(all ? (used_bl & used_blb) : (used_bl | used_blb));
    }
}

/* Run ``range`` over all synapses on L->threads OpenMP threads (contiguous ranges of whole blocks).
   OpenMP, not threads of our own: the library links the libgomp that torch has loaded, so its
   threads are torch's own intra-op threads (which may still be spinning after torch's last parallel
   operation and would otherwise take the cores from ours). */
static void run_ranges(const Launch *L, void (*range)(const Launch *, int64_t, int64_t)) {
    int64_t blocks = (L->numel + BLOCK - 1) / BLOCK;
    int threads = (int)(L->threads < 1 ? 1 : L->threads);
    if (threads > blocks) threads = blocks > 0 ? (int)blocks : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int k = 0; k < threads; k++) {
        int64_t begin = blocks * k / threads * BLOCK, end = blocks * (k + 1) / threads * BLOCK;
        range(L, begin, end < L->numel ? end : L->numel);
    }
}

/* The update, the optimizer step or the read L describes; with L->due, the refresh condition. 0 on success. */
int rramk_weak_reset_run(const Launch *L) {
    run_ranges(L, L->due ? due_range : update_range);
    return 0;
}
