/*
 * row_t.h -- per-row primitives of the softmax family, templated on T (see
 * dtype_*.h). Each is one vectorisable loop over a contiguous row of n
 * elements; accumulations are float64.
 *
 *   row_max(x)              m = max_k x_k   (-inf for an empty row; NaN skipped,
 *                                            it propagates through the exps)
 *   row_sumexp(x, m)        s = sum_k exp(x_k - m)
 *   row_sumexp_store(x,m,e) the same, storing e_k = exp(x_k - m)
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

FC_SIMD_CLONES
static double FC(row_sumexp)(const T *FC_RESTRICT x, int64_t n, T m) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; k++) s += (double)FC_EXP(x[k] - m);
    return s;
}

FC_SIMD_CLONES
static double FC(row_sumexp_store)(const T *FC_RESTRICT x, int64_t n, T m, T *FC_RESTRICT e) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; k++) {
        T v = FC_EXP(x[k] - m);
        e[k] = v;
        s += (double)v;
    }
    return s;
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

/* log(sum_k exp(x_k)) in double from its max m and shifted sum s; an all
 * -inf row gives -inf, +inf with no NaN gives +inf (no inf - inf). */
static double FC(row_lse)(const T *x, int64_t n, T m, double s) {
    if (m == FC_T_INF || m == -FC_T_INF) return FC(row_has_nan)(x, n) ? NAN : (double)m;
    return (double)m + log(s);
}
