/* The kernels of tinyprune's C exports (deploy/c_export.py), float32 and integer-only alike,
 * copied by it into each exported .c file after the lines that choose them:
 *
 *     typedef uint16_t ptr_t;      (or uint32_t: entries of a layer's gap stream)
 *     #define SKIP 255             a gap that only moves the input pointer on, with no weight
 *     #define INT8_MODEL           integers only, TFLite's arithmetic (else float32)
 *     #define SHARED_WEIGHTS       int8 shared weights (a codebook and packed indices)
 *     #define HAS_CONV             for a model with conv layers
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

/* One layer: its gap stream (row r's entries are ptr[r] .. ptr[r+1]-1 of gap), its weights and
 * biases, and what turns an accumulator into the layer's output. */
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
 * (SaturatingRoundingDoublingHighMul; C's division rounds toward zero, hence the nudge), then a
 * right shift that rounds to nearest, halves away from zero (RoundingDivideByPOT). >> of a
 * negative number is an arithmetic shift in gcc and clang (C99 leaves it to them). */
static int32_t doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    const int64_t ab = (int64_t)a * b;
    const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t rounding_divide_by_pot(int32_t x, int exponent)
{
    /* halves upward, as LiteRT's builtin kernels (deploy/quantize.py says why) */
    const int64_t half = exponent > 0 ? (int64_t)1 << (exponent - 1) : 0;
    return (int32_t)(((int64_t)x + half) >> exponent);
}

/* The int8 value of an accumulator: clamp(zero + acc * mult / 2^31 * 2^shift, lo, 127), lo
 * the zero point with a fused ReLU, else -128. The left shift cannot overflow: Int8Model
 * checks the accumulators' bound. */
static int8_t requantize(int32_t acc, int32_t mult, int shift, int zero, int lo)
{
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32_t y = rounding_divide_by_pot(doubling_high_mul(acc * (1 << left), mult), right)
                      + zero;
    return (int8_t)(y < lo ? lo : (y > 127 ? 127 : y));
}

/* Output channel c's value of an accumulator, and the value of a real 0 (padding). */
#define ACTIVATION(L, acc, c) requantize(acc, (L)->mult[c], (L)->shift[c], (L)->zero, (L)->lo)
#define REAL_ZERO(L) ((int8_t)(L)->zero)
#else
#define ACTIVATION(L, acc, c) ((L)->relu && (acc) < 0.0f ? 0.0f : (acc))
#define REAL_ZERO(L) 0.0f
#endif

#ifdef HAS_CONV
#ifdef __GNUC__
/* conv_rows has few live variables, so that those of its MAC loop stay in registers */
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* Two rows of one channel's conv output, before pooling: rows[r*Wo + j] = b + the sum over the
 * taps (entries g .. end-1, weights n, n+1, ...) of weight * x[offset + r*Wp + j], r = 0, 1,
 * where each gap moves the tap's offset on. -> the number of the channel's next weight. */
static NOINLINE uint32_t conv_rows(const act_t *x, int Wp, int Wo, const uint8_t *g,
                                   const uint8_t *end, const weights_t *weights, uint32_t n,
                                   acc_t b, acc_t *rows)
{
    const weights_t w = *weights;     /* a local copy, so that its pointers stay in registers */
    acc_t *rows1 = rows + Wo;
    for (int j = 0; j < 2 * Wo; j++)
        rows[j] = b;
    for (; g < end; g++) {
        x += *g;
        if (*g == SKIP)
            continue;
        const acc_t wt = WEIGHT(&w, n++);
        const act_t *x1 = x + Wp;
        for (int j = 0; j < Wo; j++) {
            rows[j] += wt * x[j];
            rows1[j] += wt * x1[j];
        }
    }
    return n;
}

/* out[f] = maxpool2x2(ACTIVATION(bias[f] + sum of the taps of channel f)), for f < F: for
 * int8, TFLite's order (requantise, the ReLU fused in, then the max of the int8 values).
 * in (C, Hp, Wp): the input, already padded; channel f's taps are entries ptr[f] .. ptr[f+1]-1
 * of gap, a tap at offset o of `in` adding weight * in[o + oh*Wp + ow] to conv output (oh, ow).
 * Two conv rows at a time go into rows (2 * Wo accumulators), then pool into one output row.
 * out (F, Hq + 2*opad, Wq + 2*opad): the pooled planes inside a border of opad real zeros,
 * the padding of the next conv. */
static void conv_pool(const act_t *in, int Hp, int Wp, int K, int F, const layer_t *L, int opad,
                      acc_t *rows, act_t *out)
{
    const int Ho = Hp - K + 1, Wo = Wp - K + 1, Hq = Ho / 2, Wq = Wo / 2;
    const int Hs = Hq + 2 * opad, Ws = Wq + 2 * opad;
    uint32_t first = 0, n = 0;            /* the number of channel f's first weight */
    for (int j = 0; opad > 0 && j < F * Hs * Ws; j++)
        out[j] = REAL_ZERO(L);
    for (int f = 0; f < F; f++, first = n) {
        act_t *o = out + f * Hs * Ws + opad * Ws + opad;
        for (int i = 0; i < Hq; i++) {
            n = conv_rows(in + 2 * i * Wp, Wp, Wo, L->gap + L->ptr[f], L->gap + L->ptr[f + 1],
                          &L->weights, first, L->bias[f], rows);
            for (int k = 0; k < Wq; k++) {
                const acc_t *r = rows + 2 * k;
                act_t m = ACTIVATION(L, r[0], f), v;
                if ((v = ACTIVATION(L, r[1], f)) > m) m = v;
                if ((v = ACTIVATION(L, r[Wo], f)) > m) m = v;
                if ((v = ACTIVATION(L, r[Wo + 1], f)) > m) m = v;
                o[i * Ws + k] = m;
            }
        }
    }
}
#endif
/* out[r] = ACTIVATION(bias[r] + sum of row r's weights times the inputs they pick), r < R. */
static void linear(const act_t *x, int R, const layer_t *L, act_t *out)
{
    const weights_t w = L->weights;   /* a local copy, so that its pointers stay in registers */
    const uint8_t *g = L->gap + L->ptr[0];
    uint32_t n = 0;
    for (int r = 0; r < R; r++) {
        acc_t acc = L->bias[r];
        const act_t *xp = x;
        for (const uint8_t *end = L->gap + L->ptr[r + 1]; g < end; g++) {
            xp += *g;
            if (*g != SKIP)
                acc += WEIGHT(&w, n++) * *xp;
        }
        out[r] = ACTIVATION(L, acc, r);
    }
}
