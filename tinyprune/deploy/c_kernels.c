/* The kernels of tinyprune's C exports (deploy/c_export.py), float32 and integer-only alike,
 * copied by it into each exported .c file after the lines that choose them:
 *
 *     typedef uint16_t ptr_t;      (or uint32_t: entries of a layer's gap stream)
 *     #define SKIP 255             a gap that only moves the input pointer on, with no weight
 *     #define INT8_MODEL           integers only, TFLite's arithmetic (else float32)
 *     #define SHARED_WEIGHTS       int8 shared weights (a codebook and packed indices)
 *     #define CONV_GAPS            for a model with conv layers stored as gap streams
 *     #define LINEAR_GAPS          ... linear layers stored as gap streams
 *     #define CONV_DENSE           ... conv layers stored dense (int8 only, see dot)
 *     #define LINEAR_DENSE         ... linear layers stored dense
 *
 * Each layer's kept weights are entries of a gap stream (see c_export.py): an entry's gap moves
 * the input pointer on from the previous entry, and every entry but a SKIP has a weight. */

#ifdef INT8_MODEL
typedef int8_t act_t;                 /* activations */
typedef int32_t acc_t;                /* accumulators and biases */
#else
typedef float act_t;
typedef float acc_t;
#endif

#ifdef SHARED_WEIGHTS
/* A layer's kept weights as shared values: weight n is codebook[index n], the indices `bits`
 * bits each, packed from the lowest bit of index[0] up (index has one spare byte at the end). */
typedef struct { const int8_t *codebook; const uint8_t *index; uint32_t bits; } weights_t;
static inline int32_t shared_weight(const weights_t *w, uint32_t n)
{
    const uint32_t bit = n * w->bits;
    const uint32_t two = w->index[bit >> 3] | (uint32_t)w->index[(bit >> 3) + 1] << 8;
    return w->codebook[(two >> (bit & 7)) & ((1u << w->bits) - 1)];
}
#define WEIGHT(w, n) shared_weight(w, n)
#else
/* A layer's kept weights, one each (int8 or float), in the order of its entries. */
typedef struct { const act_t *values; } weights_t;
#define WEIGHT(w, n) ((w)->values[n])
#endif

/* One layer: its gap stream (row r's entries are ptr[r] .. ptr[r+1]-1 of gap; both 0 for a
 * dense layer), its weights and biases, and what turns an accumulator into its output. */
typedef struct {
    const ptr_t *ptr;
    const uint8_t *gap;
    weights_t weights;
    const acc_t *bias;
#ifdef INT8_MODEL
    const int32_t *mult;              /* per output channel: the requantisation */
    const int8_t *shift;
    int32_t zero, lo;                 /* the output's zero point; its lowest value */
#else
    int relu;
#endif
} layer_t;

#ifdef INT8_MODEL
/* TFLite's requantisation (its reference kernels' MultiplyByQuantizedMultiplier): acc times
 * mult / 2^31 * 2^shift, in two roundings. First the high 32 bits of 2 acc mult, rounded
 * (SaturatingRoundingDoublingHighMul): TFLite's (ab + nudge) / 2^31, a division that rounds
 * toward zero, nudge = 2^30 if ab >= 0 else 1 - 2^30, is floor((ab + 2^30) / 2^31) either way
 * (for ab < 0 the numerator N is < 0, and trunc(N / D) = floor((N + D - 1) / D)): one shift,
 * no branches. It saturates only for a = b = INT32_MIN, and mult is in [2^30, 2^31)
 * (quantize_multiplier). Then a right shift that rounds to nearest, halves upward (as
 * LiteRT's builtin kernels; deploy/quantize.py says why), floor((y + 2^(right-1)) / 2^right):
 * with t = y >> (right-1), that is floor((t + 1) / 2), t's last bit the carry, with no sum
 * that could overflow. >> of a negative number is an arithmetic shift in gcc and clang (C99
 * leaves it to them). The int8 value is clamp(zero + that, lo, 127), lo the zero point with
 * a fused ReLU, else -128. The left shift cannot overflow: Int8Model checks the accumulators'
 * bound. */
static int8_t requantize(int32_t acc, int32_t mult, int shift, int zero, int lo)
{
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int32_t y = (int32_t)(((int64_t)(acc * (1 << left)) * mult + (1 << 30)) >> 31);
    if (right > 0) {
        const int32_t t = y >> (right - 1);
        y = (t >> 1) + (t & 1);
    }
    y += zero;
    return (int8_t)(y < lo ? lo : (y > 127 ? 127 : y));
}

/* Output channel c's value of an accumulator, and the value of a real 0 (padding). */
#define ACTIVATION(L, acc, c) requantize(acc, (L)->mult[c], (L)->shift[c], (L)->zero, (L)->lo)
#define REAL_ZERO(L) ((int8_t)(L)->zero)

/* Four int8 at a time. Dense layers (those whose every-weight array is smaller than their gap
 * stream) keep all their weights, row by row, each row padded with zeros to a multiple of 4:
 * four int8 weights are one 32-bit word, multiplied with four inputs by two SMLADs (the DSP
 * extension of the Cortex-M4, M33, M55: two 16-bit multiply-adds into a 32-bit accumulator, one
 * instruction). Sparse convs load four adjacent inputs at once (pool4).
 * SXTB16 sign-extends bytes 0 and 2 of a word into two 16-bit halves; of the word rotated by
 * 8, bytes 1 and 3. Both operands widened the same way line up: w0 x0 + w2 x2, w1 x1 + w3 x3.
 * Without the DSP extension (the Cortex-M3, the host's gcc) the same three steps in C. The
 * sum is the same integer in any order: no rounding, and Int8Model checks it fits int32. */
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define SXTB16(x) ((uint32_t)__sxtb16(x))
/* arm_acle.h has no SXTB16 with its rotation: one instruction, not a rotate and an SXTB16 */
static inline uint32_t sxtb16_ror8(uint32_t x)
{
    uint32_t y;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(y) : "r"(x));
    return y;
}
#define SXTB16_ROR8(x) sxtb16_ror8(x)
#define SMLAD(a, b, acc) __smlad((int16x2_t)(a), (int16x2_t)(b), acc)
#define SMLABB(a, b, acc) __smlabb((int32_t)(a), b, acc)   /* acc + a's bottom half times b's */
#define SMLATB(a, b, acc) __smlatb((int32_t)(a), b, acc)   /* acc + a's top half times b's */
#else
#define SXTB16(x) ((uint32_t)(uint16_t)(int8_t)(x) | (uint32_t)(int8_t)((x) >> 16) << 16)
#define SXTB16_ROR8(x) SXTB16((x) >> 8)
#define SMLAD(a, b, acc) \
    ((acc) + (int16_t)(a) * (int16_t)(b) + (int16_t)((a) >> 16) * (int16_t)((b) >> 16))
#define SMLABB(a, b, acc) ((acc) + (int16_t)(a) * (int16_t)(b))
#define SMLATB(a, b, acc) ((acc) + (int16_t)((a) >> 16) * (int16_t)(b))
#endif

/* Four int8 as one word, byte 0 lowest: gcc makes it one load (the Cortex-M loads words from
 * any address). A macro: gcc -Os would call a function, even an inline one. LOAD2: two. */
#define LOAD4(p) \
    ((uint32_t)(uint8_t)(p)[0] | (uint32_t)(uint8_t)(p)[1] << 8 | \
     (uint32_t)(uint8_t)(p)[2] << 16 | (uint32_t)(uint8_t)(p)[3] << 24)
#define LOAD2(p) ((uint32_t)(uint8_t)(p)[0] | (uint32_t)(uint8_t)(p)[1] << 8)
#else
#define ACTIVATION(L, acc, c) ((L)->relu && (acc) < 0.0f ? 0.0f : (acc))
#define REAL_ZERO(L) 0.0f
#endif

#ifdef __GNUC__
/* a function kept whole has few live variables, so that those of its loop stay in registers */
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

#ifdef CONV_GAPS
#ifdef INT8_MODEL
/* An int8 conv tap as one word: its offset in the input in the top 16 bits (c_export.py
 * checks that it fits), its weight in the bottom 16, which SMLABB and SMLATB multiply by as
 * it is: one load a tap, and one pointer in the loops. */
typedef int32_t tap_t;
#define TAP(offset, weight) ((tap_t)((uint32_t)(offset) << 16 | (uint16_t)(weight)))
#define TAP_OFFSET(tap) ((uint32_t)(tap) >> 16)
#else
typedef struct { int32_t offset; float weight; } tap_t;
#define TAP(offset, weight) ((tap_t){(offset), (weight)})
#endif

/* One channel's taps, out of its gap stream (entries g .. end-1, weights n, n+1, ...), once
 * for all its output rows, so that the rows' loops read no gaps and no SKIPs: a tap adds its
 * weight times x[offset + oh*Wp + ow] to conv output (oh, ow). -> the number of taps. */
static int taps_of(const uint8_t *g, const uint8_t *end, const weights_t *weights, uint32_t n,
                   tap_t *taps)
{
    int t = 0;
    int32_t o = 0;
    for (; g < end; g++) {
        o += *g;
        if (*g != SKIP)
            taps[t] = TAP(o, WEIGHT(weights, n + t)), t++;
    }
    return t;
}

#ifdef INT8_MODEL
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Two pooling windows side by side, of the conv outputs (r, j) = b + the sum over the T (> 0)
 * taps of weight * x[offset + r*Wp + j], r < 2, j < 4: best[0] = the largest of those with
 * j < 2, best[1] of those with j = 2, 3. One call for eight outputs; row by row, their four
 * accumulators stay in registers while the taps stream by, and one word load brings a tap's
 * four inputs (SXTB16: x0 and x2 in one word, x1 and x3 in the other). Alone, so that its
 * loop's values stay in registers (every one: 11 instructions a tap on the M4). */
static NOINLINE void pool4(const act_t *x, int Wp, const tap_t *taps, int T, acc_t b,
                           acc_t *best)
{
    const tap_t *end = taps + T;
    acc_t m0 = INT32_MIN, m1 = INT32_MIN;
    for (int r = 0; r < 2; r++) {
        const tap_t *tap = taps;
        acc_t a0 = b, a1 = b, a2 = b, a3 = b;
        do {                          /* tested at its end: one branch a tap, not two */
            const tap_t wt = *tap++;
            const act_t *xt = x + TAP_OFFSET(wt);
            const uint32_t v = LOAD4(xt), even = SXTB16(v), odd = SXTB16_ROR8(v);
            a0 = SMLABB(even, wt, a0), a2 = SMLATB(even, wt, a2);
            a1 = SMLABB(odd, wt, a1), a3 = SMLATB(odd, wt, a3);
        } while (tap < end);
        m0 = MAX(m0, MAX(a0, a1));
        m1 = MAX(m1, MAX(a2, a3));
        if (r == 0)
            x += Wp;                  /* row 1; never row 2, which may lie past the input */
    }
    best[0] = m0, best[1] = m1;
}

/* One pooling window: the largest of the conv outputs (r, j), r, j < 2, as in pool4. Each
 * tap's four inputs are two halfword loads, one from each row. */
static NOINLINE acc_t pool2(const act_t *x, int Wp, const tap_t *taps, int T, acc_t b)
{
    const act_t *x1 = x + Wp;
    const tap_t *end = taps + T;
    acc_t a0 = b, a1 = b, a2 = b, a3 = b;
    do {
        const tap_t wt = *taps++;
        const act_t *xt = x + TAP_OFFSET(wt), *xt1 = x1 + TAP_OFFSET(wt);
        const uint32_t v = LOAD2(xt) | LOAD2(xt1) << 16;
        const uint32_t even = SXTB16(v), odd = SXTB16_ROR8(v);
        a0 = SMLABB(even, wt, a0), a2 = SMLATB(even, wt, a2);
        a1 = SMLABB(odd, wt, a1), a3 = SMLATB(odd, wt, a3);
    } while (taps < end);
    return MAX(MAX(a0, a1), MAX(a2, a3));
}

/* One row of pooled accumulators: best[k] = the largest conv output of pooling window k
 * (conv rows 0 and 1 of x, columns 2k and 2k+1), k < Wq; two windows at a time, the last
 * alone if Wq is odd (pool4 and pool2 take at least one tap: no test in their loops). */
static void pooled_row(const act_t *x, int Wp, int Wo, const tap_t *taps, int T, acc_t b,
                       acc_t *best)
{
    const int Wq = Wo / 2;
    int k = 0;
    for (; T == 0 && k < Wq; k++)
        best[k] = b;
    for (; k + 1 < Wq; k += 2)
        pool4(x + 2 * k, Wp, taps, T, b, best + k);
    if (k < Wq)
        best[k] = pool2(x + 2 * k, Wp, taps, T, b);
}
#else
/* One row of pooled accumulators: best[k] = the largest of b + the sum over the taps of
 * weight * x[offset + r*Wp + 2k + j], r, j < 2, for k < Wo / 2; best has room for 2 * Wo
 * (the two conv rows, pooled in place). */
static NOINLINE void pooled_row(const act_t *x, int Wp, int Wo, const tap_t *taps, int T,
                                acc_t b, acc_t *best)
{
    acc_t *rows = best, *rows1 = rows + Wo;
    for (int j = 0; j < 2 * Wo; j++)
        rows[j] = b;
    for (int t = 0; t < T; t++) {
        const acc_t wt = taps[t].weight;
        const act_t *x0 = x + taps[t].offset, *x1 = x0 + Wp;
        for (int j = 0; j < Wo; j++) {
            rows[j] += wt * x0[j];
            rows1[j] += wt * x1[j];
        }
    }
    for (int k = 0; k < Wo / 2; k++) {   /* in place: best[k] reads rows[2k ..] */
        const acc_t *r = rows + 2 * k;
        acc_t m = r[0];
        if (r[1] > m) m = r[1];
        if (r[Wo] > m) m = r[Wo];
        if (r[Wo + 1] > m) m = r[Wo + 1];
        best[k] = m;
    }
}
#endif

/* out[f] = maxpool2x2(ACTIVATION(bias[f] + sum of the taps of channel f)), for f < F. TFLite
 * requantises each conv output, then takes the max of the int8 values; ACTIVATION is
 * monotone (non-decreasing: mult > 0, then a clamp), so the max of the accumulators,
 * requantised once, is the same value for a quarter of the requantisations.
 * in (C, Hp, Wp): the input, already padded; channel f's taps are entries ptr[f] .. ptr[f+1]-1
 * of gap, a tap at offset o of `in` adding weight * in[o + oh*Wp + ow] to conv output (oh, ow).
 * Two conv rows at a time pool into rows (pooled_row: room for Wo / 2 accumulators, float
 * 2 * Wo), then requantise into one output row.
 * taps: room for the taps of a channel (taps_of).
 * out (F, Hq + 2*opad, Wq + 2*opad): the pooled planes inside a border of opad real zeros,
 * the padding of the next conv. */
static void conv_pool(const act_t *in, int Hp, int Wp, int K, int F, const layer_t *L, int opad,
                      acc_t *rows, tap_t *taps, act_t *out)
{
    const int Ho = Hp - K + 1, Wo = Wp - K + 1, Hq = Ho / 2, Wq = Wo / 2;
    const int Hs = Hq + 2 * opad, Ws = Wq + 2 * opad;
    uint32_t n = 0;                       /* the number of channel f's first weight */
    for (int j = 0; opad > 0 && j < F * Hs * Ws; j++)
        out[j] = REAL_ZERO(L);
    for (int f = 0; f < F; f++) {
        act_t *o = out + f * Hs * Ws + opad * Ws + opad;
        const int T = taps_of(L->gap + L->ptr[f], L->gap + L->ptr[f + 1], &L->weights, n, taps);
        n += T;
        for (int i = 0; i < Hq; i++) {
            pooled_row(in + 2 * i * Wp, Wp, Wo, taps, T, L->bias[f], rows);
            for (int k = 0; k < Wq; k++)
                o[i * Ws + k] = ACTIVATION(L, rows[k], f);
        }
    }
}
#endif

#ifdef LINEAR_GAPS
/* acc + the sum over one row's entries g .. end-1 (weights *n, *n+1, ...) of weight times the
 * input it picks; moves *n on. Alone, so that its loop's values stay in registers. */
static NOINLINE acc_t gap_dot(const act_t *x, const uint8_t *g, const uint8_t *end,
                              const weights_t *weights, uint32_t *next, acc_t acc)
{
    const weights_t w = *weights;
    uint32_t n = *next;
    if (g < end)
        do {                          /* tested at its end: one branch an entry, not two */
            const uint32_t gap = *g++;
            x += gap;
            if (gap != SKIP)
                acc += WEIGHT(&w, n++) * *x;
        } while (g < end);
    *next = n;
    return acc;
}

/* out[r] = ACTIVATION(bias[r] + sum of row r's weights times the inputs they pick), r < R. */
static void linear(const act_t *x, int R, const layer_t *L, act_t *out)
{
    uint32_t n = 0;
    for (int r = 0; r < R; r++) {
        const acc_t acc = gap_dot(x, L->gap + L->ptr[r], L->gap + L->ptr[r + 1], &L->weights,
                                  &n, L->bias[r]);
        out[r] = ACTIVATION(L, acc, r);
    }
}
#endif

#if defined(CONV_DENSE) || defined(LINEAR_DENSE)
/* acc + the sum of w[i] x[i] for i < n, n a multiple of 4 (> 0) */
static int32_t dot(const int8_t *w, const int8_t *x, int n, int32_t acc)
{
    const int8_t *end = w + n;
    do {
        const uint32_t a = LOAD4(w), b = LOAD4(x);
        acc = SMLAD(SXTB16(a), SXTB16(b), acc);
        acc = SMLAD(SXTB16_ROR8(a), SXTB16_ROR8(b), acc);
        w += 4, x += 4;
    } while (w < end);
    return acc;
}

/* The same for two rows of weights, w0 and w1, at once: x is loaded and widened once for
 * both. -> the two sums in acc[0], acc[1]. Not inlined: alone, its loop's eleven values stay
 * in registers. */
static NOINLINE void dot2(const int8_t *w0, const int8_t *w1, const int8_t *x, int n,
                          int32_t *acc)
{
    int32_t acc0 = acc[0], acc1 = acc[1];
    const int8_t *end = x + n;
    do {
        const uint32_t b = LOAD4(x), b0 = SXTB16(b), b1 = SXTB16_ROR8(b);
        const uint32_t a = LOAD4(w0), c = LOAD4(w1);
        acc0 = SMLAD(SXTB16(a), b0, acc0);
        acc0 = SMLAD(SXTB16_ROR8(a), b1, acc0);
        acc1 = SMLAD(SXTB16(c), b0, acc1);
        acc1 = SMLAD(SXTB16_ROR8(c), b1, acc1);
        w0 += 4, w1 += 4, x += 4;
    } while (x < end);
    acc[0] = acc0, acc[1] = acc1;
}

/* acc[r] = bias[r] + row r of the weights w (R rows of N) times x, for r < R: two rows at a
 * time. */
static void rows_times(const int8_t *w, const int8_t *x, int N, int R, const int32_t *bias,
                       int32_t *acc)
{
    int r = 0;
    for (; r + 1 < R; r += 2) {
        acc[r] = bias[r], acc[r + 1] = bias[r + 1];
        dot2(w + r * N, w + (r + 1) * N, x, N, acc + r);
    }
    if (r < R)
        acc[r] = dot(w + r * N, x, N, bias[r]);
}

#ifdef LINEAR_DENSE
/* out[r] = ACTIVATION(bias[r] + row r of the weights (N, a multiple of 4, each) times x);
 * acc: R int32. */
static void linear_dense(const act_t *x, int N, int R, const layer_t *L, acc_t *acc,
                         act_t *out)
{
    rows_times(L->weights.values, x, N, R, L->bias, acc);
    for (int r = 0; r < R; r++)
        out[r] = ACTIVATION(L, acc[r], r);
}
#endif

#ifdef CONV_DENSE
/* conv_pool for a dense conv: the weights (F, N), N = C*K*K rounded up to a multiple of 4.
 * For each of a pooling window's four conv outputs its taps are copied into col, in the
 * weights' order (c, kh, kw), and every channel's accumulator is the dot product of col and
 * the channel's weights; best[f] keeps channel f's largest, requantised once (see conv_pool).
 * col: N int8; acc, best: F int32 each. */
static void conv_pool_dense(const act_t *in, int C, int Hp, int Wp, int K, int F,
                            const layer_t *L, int opad, act_t *col, acc_t *acc, acc_t *best,
                            act_t *out)
{
    const int Hq = (Hp - K + 1) / 2, Wq = (Wp - K + 1) / 2, N = (C * K * K + 3) & ~3;
    const int Hs = Hq + 2 * opad, Ws = Wq + 2 * opad;
    for (int j = 0; opad > 0 && j < F * Hs * Ws; j++)
        out[j] = REAL_ZERO(L);
    for (int j = C * K * K; j < N; j++)
        col[j] = 0;                       /* times the rows' zero padding */
    for (int i = 0; i < Hq; i++)
        for (int k = 0; k < Wq; k++) {
            for (int window = 0; window < 4; window++) {
                const act_t *x = in + (2 * i + window / 2) * Wp + 2 * k + window % 2;
                act_t *c = col;
                for (int ch = 0; ch < C; ch++, x += Hp * Wp)
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++)
                            *c++ = x[kh * Wp + kw];
                rows_times(L->weights.values, col, N, F, L->bias, acc);
                for (int f = 0; f < F; f++)
                    if (window == 0 || acc[f] > best[f])
                        best[f] = acc[f];
            }
            for (int f = 0; f < F; f++)
                out[f * Hs * Ws + (opad + i) * Ws + opad + k] = ACTIVATION(L, best[f], f);
        }
}
#endif
#endif
