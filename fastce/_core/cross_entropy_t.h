/* cross_entropy_t.h -- cross-entropy kernels for one dtype (math in cross_entropy.c). */

/* sum_c w_c (x_c - m), a zero weight contributing 0 even at x_c = -inf */
FC_SIMD_CLONES
static double FC(row_wshift)(const T *FC_RESTRICT x, int64_t n, T m, const double *FC_RESTRICT w) {
    double s = 0.0;
    if (w) {
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < n; k++) s += w[k] != 0.0 ? w[k] * ((double)x[k] - (double)m) : 0.0;
    } else {
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < n; k++) s += ((double)x[k] - (double)m);
    }
    return s;
}

FC_SIMD_CLONES
static double FC(ce_index_row)(const FC(loss_ctx) *k, int64_t i) {
    const int64_t c = k->c, y = k->y[i];
    const fastce_options *o = k->o;
    if (FC(skip_ignored_row)(k, i)) return 0.0;
    T *g = k->grad ? k->grad + i * k->grs : NULL;
    const T *x = k->x + i * k->rs;
    const double *w = o->class_weight;
    const double eps = o->label_smoothing, wy = w ? w[y] : 1.0;
    const T m = FC(row_max)(x, c);
    const double sm1 = g ? FC(row_sumexp_m1_store)(x, c, m, g) : FC(row_sumexp_m1)(x, c, m);
    const double s = 1.0 + sm1, ls = log1p(sm1);
    const double logp_y = ((double)x[y] - (double)m) - ls;
    double l = (1.0 - eps) * wy * -logp_y;
    if (eps > 0.0) l += eps / (double)c * (k->wsum * ls - FC(row_wshift)(x, c, m, w));
    if (g) {
        const double a = (1.0 - eps) * wy + eps / (double)c * k->wsum;
        const T cp = (T)(k->scale * a / s);
        if (eps > 0.0) {
            const double e = k->scale * eps / (double)c;
            if (w) {
#pragma omp simd
                for (int64_t j = 0; j < c; j++) g[j] = g[j] * cp - (T)(e * w[j]);
            } else {
                const T et = (T)e;
#pragma omp simd
                for (int64_t j = 0; j < c; j++) g[j] = g[j] * cp - et;
            }
        } else {
            FC(row_scale)(g, c, cp);
        }
        /* a p_y - (1 - eps) w_y - eps/C w_y = (1 - eps) w_y expm1(logp_y) + eps/C (W p_y - w_y) */
        double gy = (1.0 - eps) * wy * expm1(logp_y);
        if (eps > 0.0) gy += eps / (double)c * (k->wsum * exp(logp_y) - wy);
        g[y] = (T)(k->scale * gy);
    }
    return l;
}

FC_SIMD_CLONES
static double FC(ce_prob_row)(const FC(loss_ctx) *k, int64_t i) {
    const int64_t c = k->c;
    const fastce_options *o = k->o;
    const T *x = k->x + i * k->rs, *t = k->t + i * k->trs;
    const double *w = o->class_weight;
    const double eps = o->label_smoothing, u = eps / (double)c;
    T *g = k->grad ? k->grad + i * k->grs : NULL;
    const T m = FC(row_max)(x, c);
    const double sm1 = g ? FC(row_sumexp_m1_store)(x, c, m, g) : FC(row_sumexp_m1)(x, c, m);
    const double s = 1.0 + sm1, ls = log1p(sm1);
    double A = 0.0, B = 0.0; /* A = sum w t', B = sum_{w t' != 0} w t' (x - m) */
#pragma omp simd reduction(+ : A, B)
    for (int64_t j = 0; j < c; j++) {
        double a = (1.0 - eps) * (double)t[j] + u;
        if (w) a *= w[j];
        A += a;
        B += a != 0.0 ? a * ((double)x[j] - (double)m) : 0.0;
    }
    if (g) {
        const T cp = (T)(k->scale * A / s);
        for (int64_t j = 0; j < c; j++) {
            double a = (1.0 - eps) * (double)t[j] + u;
            if (w) a *= w[j];
            g[j] = g[j] * cp - (T)(k->scale * a);
        }
    }
    return A * ls - B;
}

int FC(fastce_cross_entropy)(const T *x, int64_t n, int64_t c, int64_t rs, const int64_t *y,
                             const fastce_options *opt, double *loss, T *grad, int64_t grs) {
    fastce_options o;
    int st = FC(check_loss_args)(x, n, c, rs, y, NULL, 0, opt, &o, loss, grad, grs);
    if (st) return st;
    double denominator;
    if ((st = FC(check_index_targets)(y, n, c, o.ignore_index, o.class_weight, &denominator)))
        return st;
    FC(loss_ctx) k = {x, rs, c, y, NULL, 0, &o, fc_grad_scale(o.reduction, denominator),
                      0.0, grad, grs, NULL};
    if (o.label_smoothing > 0.0)
        k.wsum = o.class_weight ? fc_sum_ordered(o.class_weight, c) : (double)c;
    return FC(run_rows)(&k, FC(ce_index_row), n, denominator, loss);
}

int FC(fastce_cross_entropy_prob)(const T *x, int64_t n, int64_t c, int64_t rs, const T *t,
                                  int64_t trs, const fastce_options *opt, double *loss, T *grad,
                                  int64_t grs) {
    fastce_options o;
    int st = FC(check_loss_args)(x, n, c, rs, NULL, t, trs, opt, &o, loss, grad, grs);
    if (st) return st;
    FC(loss_ctx) k = {x, rs, c, NULL, t, trs, &o, fc_grad_scale(o.reduction, (double)n),
                      0.0, grad, grs, NULL};
    return FC(run_rows)(&k, FC(ce_prob_row), n, (double)n, loss);
}
