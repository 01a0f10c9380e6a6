/*
 * focal.c -- softmax (multi-class) focal loss, Lin et al. (RetinaNet):
 *
 *   l = -alpha_t (1 - p_t)^gamma log p_t,   p_t = p_y (class indices)
 *   with lp = log p_t = (x_y - m) - log s and q = 1 - p_t = -expm1(lp) (no
 *   cancellation as p_t -> 1). With r = lp / q (-> -1 as q -> 0):
 *   dl/dx_k = G (p_k - [k == y]),  G = alpha_t q^gamma (1 - gamma p_t r)
 *   which stays finite for gamma < 1 where d q^gamma / dq is infinite (the
 *   q^(gamma-1) is absorbed into q^gamma r). p_k - 1 at k == y is expm1(lp).
 * Probability targets (Keras categorical focal form):
 *   l = -sum_c a_c t_c q_c^gamma lp_c,  g_c = a_c t_c q_c^gamma (1 - gamma p_c r_c),
 *   dl/dx_k = p_k sum_c g_c - g_k = p_k (sum_{c != k} g_c) - g_k q_k.
 */
#include "internal.h"

/* For log-probability lp: sets *q = 1 - p, returns q^gamma, and in *G the
 * factor q^gamma (1 - gamma p r) of the gradient. */
static inline double fc_focal_term(double lp, double gamma, double *q_out, double *G) {
    const double p = exp(lp), q = -expm1(lp);
    const double qg = fc_pow_gamma(q, gamma);
    const double r = q > 0.0 ? lp / q : -1.0;
    const double pr = p > 0.0 ? p * r : 0.0;
    *q_out = q;
    *G = qg * (1.0 - gamma * pr);
    return qg;
}

static inline double fc_focal_alpha(const fastce_options *o, int64_t c) {
    if (o->class_alpha) return o->class_alpha[c];
    return o->alpha >= 0.0 ? o->alpha : 1.0;
}

#include "dtype_f32.h"
#include "row_t.h"
#include "loss_t.h"
#include "focal_t.h"
#include "dtype_end.h"

#include "dtype_f64.h"
#include "row_t.h"
#include "loss_t.h"
#include "focal_t.h"
#include "dtype_end.h"
