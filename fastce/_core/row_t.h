/*
 * row_t.h -- per-row primitives of the softmax family, templated on T (see
 * dtype_*.h). Each is one vectorisable loop over a contiguous row of n
 * elements; accumulations are float64.
 *
 *   row_max(x)              m = max_k x_k   (-inf for an empty row; NaN skipped,
 *                                            it propagates through the exps)
 *   row_sumexp_m1(x, m)     s - 1, s = sum_k exp(x_k - m)  (log s = log1p of it)
 *   row_sumexp_m1_store(x,m,e) the same, storing e_k = exp(x_k - m)
 *   row_scale(e, c)         e_k *= c
 *   row_log_softmax(x,m,l,o) o_k = (x_k - m) - l
 */
FC_SIMD_CLONES
static T FC(row_max)(const T *FC_RESTRICT x, int64_t n) {
    T m = -FC_T_INF;
#pragma omp simd reduction(max : m)
    for (int64_t k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
    return m;
}

/* s - 1, s = sum_k exp(x_k - m), to full relative accuracy. The max
 * element(s) contribute exactly 1 each, so s - 1 = (number of maxima - 1) +
 * (sum of the others) can be formed without the cancellation of (1 + tiny) - 1;
 * then log s = log1p(s - 1) keeps its relative accuracy when one class
 * dominates (log p_max = -1.87e-13 for logits [30, 0, 0], where log(s) is off
 * by 1e-3 relative). That form costs a second accumulator, so the fast loop
 * sums s directly and the exact form is taken only where s - 1 < 2^-10. Above
 * that, log s = log(s) loses at most (rounding of the float64 sum of n terms,
 * ~n 2^-53 at worst, typically sqrt(n) 2^-53) / 2^-10 relative: 2^-42 for a
 * few classes, ~5e-12 measured at n = 2e5 -- below float32 resolution, and
 * below the float64 tolerance of the tests (1e-11). e: the stored exps of the
 * row, or NULL to recompute them. NaN for an infinite m. */
static double FC(row_dominant_m1)(const T *x, int64_t n, T m, const T *e) {
    double rest = 0.0, eq = 0.0;
    for (int64_t k = 0; k < n; k++) {
        if (x[k] == m) eq += 1.0;
        else rest += (double)(e ? e[k] : FC_EXP(x[k] - m));
    }
    return (eq - 1.0) + rest;
}
#define FC_DOMINANT_M1 0x1p-10

FC_SIMD_CLONES
static double FC(row_sumexp_m1)(const T *FC_RESTRICT x, int64_t n, T m) {
    if (m == FC_T_INF || m == -FC_T_INF) return NAN;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; k++) s += (double)FC_EXP(x[k] - m);
    return s - 1.0 >= FC_DOMINANT_M1 ? s - 1.0 : FC(row_dominant_m1)(x, n, m, NULL);
}

/* The same, storing e_k = exp(x_k - m). */
FC_SIMD_CLONES
static double FC(row_sumexp_m1_store)(const T *FC_RESTRICT x, int64_t n, T m, T *FC_RESTRICT e) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; k++) {
        const T v = FC_EXP(x[k] - m);
        e[k] = v;
        s += (double)v;
    }
    if (m == FC_T_INF || m == -FC_T_INF) return NAN;
    return s - 1.0 >= FC_DOMINANT_M1 ? s - 1.0 : FC(row_dominant_m1)(x, n, m, e);
}

FC_SIMD_CLONES
static void FC(row_scale)(T *FC_RESTRICT e, int64_t n, T c) {
#pragma omp simd
    for (int64_t k = 0; k < n; k++) e[k] *= c;
}

FC_SIMD_CLONES
static void FC(row_log_softmax)(const T *FC_RESTRICT x, int64_t n, T m, T l, T *FC_RESTRICT o) {
#pragma omp simd
    for (int64_t k = 0; k < n; k++) o[k] = (x[k] - m) - l;
}

/* True if the row holds a NaN (used only on the rare infinite-max path). */
static int FC(row_has_nan)(const T *x, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        if (x[k] != x[k]) return 1;
    return 0;
}

/* log(sum_k exp(x_k)) in double from its max m; an all -inf row gives -inf,
 * +inf with no NaN gives +inf (no inf - inf). */
static double FC(row_lse)(const T *x, int64_t n, T m) {
    if (m == FC_T_INF || m == -FC_T_INF) return FC(row_has_nan)(x, n) ? NAN : (double)m;
    return (double)m + log1p(FC(row_sumexp_m1)(x, n, m));
}
