/*
 * softmax.c -- log_softmax, softmax and logsumexp along the rows.
 *
 *   m = max_k x_k,  s = sum_k exp(x_k - m)          (float64 sum)
 *   log_softmax_k = (x_k - m) - log s,  log s = log1p(s - 1) (see row_sumexp_m1)
 *   softmax_k     = exp(x_k - m) / s
 *   logsumexp     = m + log s   (all -inf row: -inf, not -inf - -inf = NaN)
 */
#include "internal.h"

static int fc_check_softmax_args(const void *x, int64_t n, int64_t c, int64_t rs, const void *out,
                                 int64_t ors, size_t elem, const fastce_options *opt,
                                 fastce_options *o) {
    int st = fc_resolve_options(opt, o);
    if (st) return st;
    if ((st = fc_check_matrix(x, n, c, rs, elem, 0))) return st;
    return fc_check_matrix(out, n, c, ors, elem, 1);
}

#include "dtype_f32.h"
#include "row_t.h"
#include "softmax_t.h"
#include "dtype_end.h"

#include "dtype_f64.h"
#include "row_t.h"
#include "softmax_t.h"
#include "dtype_end.h"
