/*
 * fuzz_capi.c -- libFuzzer target for every computing function of
 * include/fastce.h (both dtypes), compiled together with the core's .c files
 * under clang -fsanitize=fuzzer,address,undefined (the commands are in
 * tests/fuzz/README.md).
 *
 * Each input is decoded (a byte at a time, zeros once exhausted) into a
 * function, a dtype, sizes (small, or negative / overflowing), row strides
 * (contiguous, padded, 0, overlapping, negative, huge), options (reduction,
 * n_threads, ignore_index, smoothing / gamma / alpha including NaN, inf and
 * negatives, class vectors, elementwise weight and its strides incl. 0),
 * targets (in range, ignored, out of range) and data (including NaN, inf and
 * huge values), with some pointers NULL. Every buffer is allocated with exactly
 * the size the contract gives it (malloc(0) when the call must fail before
 * touching it), so AddressSanitizer catches any access out of bounds.
 *
 * The contract checked on top of "no crash, no sanitizer report":
 *   - a call whose arguments break a rule its documentation names returns an
 *     error (must_fail), and a call with no broken rule at all returns
 *     FASTCE_OK; an argument that breaks only a rule of a field the function
 *     does not name (e.g. gamma < 0 for cross_entropy) may go either way;
 *   - on error nothing is written: output buffers keep their 0xA5 fill;
 *   - on success nothing is written between the output rows.
 * A violation prints the reason and traps, which libFuzzer reports as a crash.
 */
#include "../c/capi_dispatch.h"

#include <math.h>   /* NAN, INFINITY, isfinite */
#include <stdint.h> /* int64_t, uint8_t, INT64_MAX, INT64_MIN */
#include <stdio.h>  /* fprintf */
#include <stdlib.h> /* malloc, free */
#include <string.h> /* memset */

#define CAP 4096    /* most elements of any buffer, and of n * c, for a call that may succeed */
#define FILL 0xA5   /* every output byte before the call */
#define BIG ((int64_t)1 << 40)

/* --- decoding -------------------------------------------------------------- */

struct reader {
    const uint8_t *p;
    size_t n;
};

static unsigned take(struct reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

#define PICK(r, table) ((table)[take(r) % (sizeof(table) / sizeof((table)[0]))])

/* A size: mostly small, sometimes negative or overflowing. */
static int64_t decode_size(struct reader *r, int64_t small) {
    static const int64_t special[] = {-1, INT64_MIN, INT64_MAX, BIG, (int64_t)1 << 62, 0};
    const unsigned b = take(r);
    return b < 232 ? (int64_t)(b % (unsigned)small) : special[b % 6];
}

/* a + b, saturated to the int64 range */
static int64_t sat_add(int64_t a, int64_t b) {
    int64_t s;
    return __builtin_add_overflow(a, b, &s) ? (b > 0 ? INT64_MAX : INT64_MIN) : s;
}

/* A row stride relative to the row length c. */
static int64_t decode_stride(struct reader *r, int64_t c) {
    const unsigned b = take(r), k = b >> 3;
    switch (b % 8) {
    case 3: return sat_add(c, 1 + k % 4);     /* padded */
    case 4: return 0;                         /* broadcast (bad for outputs) */
    case 5: return sat_add(c, -1 - (int64_t)(k % 2)); /* overlapping (bad for outputs) */
    case 6: return -1 - (int64_t)(k % 3);     /* negative */
    case 7: return k % 2 ? INT64_MAX : BIG;   /* overflowing */
    default: return c;                        /* contiguous */
    }
}

/* A data value: a grid of finite values, or one of the edge values. */
static double decode_value(struct reader *r) {
    static const double special[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e4, -1e4, 1e30, -1e30,
                                     3e38, -3e38, 1e-40, 88.8, -103.9, 709.8, -745.2, 1e300};
    const unsigned b = take(r);
    return b < 160 ? ((double)b - 80.0) / 8.0 : PICK(r, special);
}

/* An option value (smoothing, gamma, alpha). */
static double decode_option(struct reader *r) {
    static const double table[] = {0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 0.3,
                                   -1.0, -0.5, 1.5, 1e-300, 1e300, NAN, INFINITY, -INFINITY};
    return PICK(r, table);
}

/* --- exact buffers ------------------------------------------------------------- */

/* Elements spanned by n rows of c, rs apart: (n-1) rs + c; -1 if it overflows. */
static int64_t extent(int64_t n, int64_t c, int64_t rs) {
    int64_t e;
    if (n <= 0 || c <= 0) return 0;
    if (__builtin_mul_overflow(n - 1, rs, &e) || __builtin_add_overflow(e, c, &e)) return -1;
    return e;
}

static int fits(int64_t len) { return len >= 0 && len <= CAP; }

/* A buffer of exactly len elements (len 0, or len out of bounds when the call
 * must fail anyway: a zero-sized block that no access may touch). */
static void *alloc(int64_t len, size_t es) { return malloc(fits(len) ? (size_t)len * es : 0); }

static void fill_values(struct reader *r, void *p, int64_t len, size_t es) {
    for (int64_t k = 0; fits(len) && k < len; k++) {
        const double v = decode_value(r);
        if (es == 4) ((float *)p)[k] = (float)v;
        else ((double *)p)[k] = v;
    }
}

static int untouched(const void *p, int64_t bytes) {
    for (int64_t k = 0; k < bytes; k++)
        if (((const uint8_t *)p)[k] != FILL) return 0;
    return 1;
}

/* On success: the elements between the output rows (row stride > c) kept their fill. */
static int gaps_untouched(const uint8_t *out, int64_t n, int64_t c, int64_t ors, size_t es) {
    for (int64_t i = 0; i + 1 < n; i++)
        if (!untouched(out + (size_t)(i * ors + c) * es, (ors - c) * (int64_t)es)) return 0;
    return 1;
}

static void fail(const char *why, int fn, int status) {
    fprintf(stderr, "fuzz_capi: %s (function %d, status %s)\n", why, fn,
            fastce_status_name(status));
    __builtin_trap();
}

/* --- the oracle -------------------------------------------------------------------------- */

static int all_finite(const double *v, int64_t n) {
    for (int64_t k = 0; v && k < n; k++)
        if (!isfinite(v[k])) return 0;
    return 1;
}

/* Broken rules: `named` ones the function's documentation lists (the call must
 * fail), `other` ones of fields it does not use (the call may fail). */
struct verdict {
    int named, other;
};

static void rule(struct verdict *v, int broken, int named) {
    if (broken) *(named ? &v->named : &v->other) = 1;
}

/* --- the target --------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct reader r = {data, size};
    const int fn = (int)(take(&r) % CAPI_N_FNS);
    const size_t es = take(&r) % 2 ? 8 : 4;
    const int softmax_family = fn <= LOGSUMEXP, index = fn == CROSS_ENTROPY || fn == FOCAL_LOSS;
    const int dense = !softmax_family && !index;
    const int elementwise = fn == BINARY_CROSS_ENTROPY || fn == SIGMOID_FOCAL_LOSS;
    const int ce = fn == CROSS_ENTROPY || fn == CROSS_ENTROPY_PROB;
    const int focal = fn == FOCAL_LOSS || fn == FOCAL_LOSS_PROB || fn == SIGMOID_FOCAL_LOSS;
    const int rows_out = fn != LOGSUMEXP;

    const int64_t n = decode_size(&r, 10), c = decode_size(&r, 40);
    const int64_t rs = decode_stride(&r, c), trs = dense ? decode_stride(&r, c) : 0;
    const int64_t ors = decode_stride(&r, c);
    const unsigned nulls = take(&r), with_grad = take(&r) % 4 != 0;
    const int null = (nulls & 0xE0) == 0xE0; /* 1 in 8 calls has NULL pointers */
    const int null_x = null && nulls & 1, null_target = null && nulls & 2;
    const int null_out = null && nulls & 4, null_loss = null && nulls & 8;
    const int null_opt = null && nulls & 16;

    fastce_options opt = fastce_options_default();
    static const int64_t ignores[] = {-100, -1, 0, 1, 2, INT64_MIN, INT64_MAX};
    opt.reduction = (int)(take(&r) % 5) - 1;
    opt.n_threads = (int)(take(&r) % 4) - 1;
    opt.ignore_index = PICK(&r, ignores);
    opt.label_smoothing = decode_option(&r);
    opt.gamma = decode_option(&r);
    opt.alpha = decode_option(&r);
    const unsigned vectors = take(&r);
    const int64_t wrs = decode_stride(&r, 1), wcs = decode_stride(&r, 1);

    /* sizes of every buffer under the contract */
    const int64_t x_len = extent(n, c, rs), t_len = dense ? extent(n, c, trs) : 0;
    const int64_t y_len = index ? n : 0, cls_len = c > 0 && c <= CAP ? c : 0;
    const int elementwise_none = elementwise && opt.reduction == FASTCE_REDUCTION_NONE;
    int64_t loss_len = softmax_family ? 0 : 1, w_len = 0, nc = -1;
    if (n >= 0 && c >= 0 && __builtin_mul_overflow(n, c, &nc)) nc = -1;
    if (!null_opt && opt.reduction == FASTCE_REDUCTION_NONE && !softmax_family)
        loss_len = elementwise_none ? nc : n;
    const int64_t out_len = fn == LOGSUMEXP ? n : extent(n, c, ors);
    const int with_out = softmax_family || (with_grad && !null_out); /* NULL grad: forward only */
    int w_ok = 1;
    if (fn == BINARY_CROSS_ENTROPY && vectors & 8 && !null_opt) {
        int64_t a, b;
        /* the last offset (n-1) wrs + (c-1) wcs must fit (computed for any n, c >= 1) */
        const int64_t n1 = n > 1 ? n - 1 : 0, c1 = c > 1 ? c - 1 : 0;
        w_ok = !__builtin_mul_overflow(n1, wrs, &a) && !__builtin_mul_overflow(c1, wcs, &b) &&
               !__builtin_add_overflow(a, b, &w_len);
        if (w_ok && __builtin_add_overflow(w_len, 1, &w_len)) w_len = -1; /* = INT64_MAX + 1 */
        if (n <= 0 || c <= 0 || !w_ok) w_len = 0;
    }
    /* A buffer of more than PTRDIFF_MAX bytes cannot exist, even where its
     * length in elements fits in int64: "size overflow" as well. */
    const int64_t lens_es[] = {x_len, t_len, with_out ? out_len : 0};
    const int64_t lens_8[] = {y_len, w_len, loss_len};
    int too_big = 0;
    for (size_t q = 0; q < 3; q++)
        too_big |= lens_es[q] > INT64_MAX / (int64_t)es || lens_8[q] > INT64_MAX / 8 ||
                   w_len < 0;

    /* the buffers */
    void *x = alloc(x_len, es), *t = alloc(t_len, es), *out = alloc(with_out ? out_len : 0, es);
    int64_t *y = (int64_t *)alloc(y_len, sizeof(int64_t));
    double *loss = (double *)alloc(loss_len, sizeof(double));
    double *cw = (double *)alloc(cls_len, sizeof(double));
    double *ca = (double *)alloc(cls_len, sizeof(double));
    double *pw = (double *)alloc(cls_len, sizeof(double));
    double *w = (double *)alloc(w_len, sizeof(double));
    if (!x || !t || !out || !y || !loss || !cw || !ca || !pw || !w) goto done;
    fill_values(&r, x, x_len, es);
    fill_values(&r, t, t_len, es);
    fill_values(&r, cw, cls_len, sizeof(double));
    fill_values(&r, ca, cls_len, sizeof(double));
    fill_values(&r, pw, cls_len, sizeof(double));
    fill_values(&r, w, w_len, sizeof(double));
    for (int64_t i = 0; fits(y_len) && i < y_len; i++) {
        const unsigned b = take(&r);
        y[i] = b < 200 ? (c > 0 ? (int64_t)b % c : 0) : b < 216 ? opt.ignore_index
               : b < 232 ? c : PICK(&r, ignores);
    }
    if (fits(out_len) && with_out) memset(out, FILL, (size_t)out_len * es);
    if (fits(loss_len)) memset(loss, FILL, (size_t)loss_len * sizeof(double));
    if (cls_len && vectors & 1) opt.class_weight = cw;
    if (cls_len && vectors & 2) opt.class_alpha = ca;
    if (cls_len && vectors & 4) opt.pos_weight = pw;
    if (fn == BINARY_CROSS_ENTROPY && vectors & 8) {
        opt.weight = w;
        opt.weight_row_stride = wrs;
        opt.weight_col_stride = wcs;
    }

    /* the oracle */
    struct verdict v = {0, 0};
    const fastce_options *o = null_opt ? NULL : &opt;
    const fastce_options d = fastce_options_default(), *e = o ? o : &d;
    const int nonempty = n > 0 && c > 0;
    rule(&v, n < 0 || c < 0 || rs < 0 || x_len < 0 || nc < 0, 1);
    rule(&v, dense && (trs < 0 || t_len < 0), 1);
    rule(&v, rows_out && with_out && (ors < 0 || out_len < 0 || (n > 1 && c > 0 && ors < c)), 1);
    rule(&v, rows_out && !with_out && ors < 0, 0); /* grad NULL: its stride is unused */
    rule(&v, null_x && nonempty, 1);
    rule(&v, !softmax_family && null_target && n > 0, 1);
    rule(&v, softmax_family && null_out && (fn == LOGSUMEXP ? n > 0 : nonempty), 1);
    rule(&v, !softmax_family && null_loss, 1);
    rule(&v, !softmax_family && c == 0 && n > 0, 1);
    rule(&v, e->n_threads < 0, 1);
    rule(&v, e->reduction < 0 || e->reduction > 2, !softmax_family);
    rule(&v, !(e->label_smoothing >= 0 && e->label_smoothing <= 1), ce);
    rule(&v, !(e->gamma >= 0) || isnan(e->gamma), focal);
    rule(&v, isinf(e->gamma), 0);
    rule(&v, isnan(e->alpha), focal);
    rule(&v, isinf(e->alpha), 0);
    rule(&v, !all_finite(e->class_weight, cls_len), ce);
    rule(&v, !all_finite(e->class_alpha, cls_len), fn == FOCAL_LOSS || fn == FOCAL_LOSS_PROB);
    rule(&v, !all_finite(e->pos_weight, cls_len), fn == BINARY_CROSS_ENTROPY);
    rule(&v, e->weight && (wrs < 0 || wcs < 0 || (nonempty && !w_ok)), 1);
    rule(&v, e->weight && !w_ok, 0); /* an empty weight with overflowing strides: either way */
    /* elementwise weights are data: the contract does not validate them */
    rule(&v, !all_finite(e->weight, fits(w_len) ? w_len : 0), 0);
    for (int64_t i = 0; fits(y_len) && y && !null_target && i < y_len && c >= 0; i++)
        rule(&v, y[i] != e->ignore_index && (y[i] < 0 || y[i] >= c), 1);
    rule(&v, too_big, 1);
    if (!v.named) {
        /* the call may succeed: its work, its scratch (O(c)) and every buffer must be small */
        const int64_t lens[] = {x_len, t_len, y_len, out_len, loss_len, w_len, nc, n, c};
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
            if (!fits(lens[k])) goto done;
    }

    struct capi_call k = {fn, n, c, rs, trs, ors, null_x ? NULL : x, null_target ? NULL : t,
                          null_target ? NULL : y, null_out || !with_out ? NULL : out,
                          null_loss ? NULL : loss, o};
    const int st = capi_dispatch(&k, (int)es);
    if (st < FASTCE_OK || st > FASTCE_ERR_ALLOC) fail("unknown status", fn, st);
    if (v.named && st == FASTCE_OK) fail("a documented rule is broken, yet FASTCE_OK", fn, st);
    if (!v.named && !v.other && st != FASTCE_OK) fail("a valid call failed", fn, st);
    const int64_t out_bytes = with_out && fits(out_len) ? out_len * (int64_t)es : 0;
    const int64_t loss_bytes = fits(loss_len) ? loss_len * (int64_t)sizeof(double) : 0;
    if (st != FASTCE_OK && (!untouched(out, out_bytes) || !untouched(loss, loss_bytes)))
        fail("an output was written on error", fn, st);
    if (st == FASTCE_OK && rows_out && with_out && c > 0 && !gaps_untouched(out, n, c, ors, es))
        fail("wrote between the output rows", fn, st);
done:
    free(x); free(t); free(out); free(y); free(loss); free(cw); free(ca); free(pw); free(w);
    return 0;
}
