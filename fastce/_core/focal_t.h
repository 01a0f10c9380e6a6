/* focal_t.h -- softmax focal loss kernels for one dtype (math in focal.c). */

static double FC(focal_index_row)(const FC(loss_ctx) *k, int64_t i) {
    const int64_t c = k->c, y = k->y[i];
    const fastce_options *o = k->o;
    if (FC(skip_ignored_row)(k, i)) return 0.0;
    T *g = k->grad ? k->grad + i * k->grs : NULL;
    const T *x = k->x + i * k->rs;
    const T m = FC(row_max)(x, c);
    const double sm1 = g ? FC(row_sumexp_m1_store)(x, c, m, g) : FC(row_sumexp_m1)(x, c, m);
    const double s = 1.0 + sm1, lp = ((double)x[y] - (double)m) - log1p(sm1);
    const double at = fc_focal_alpha(o, y);
    double q, G;
    const double qg = fc_focal_term(lp, o->gamma, &q, &G);
    if (g) {
        G *= at * k->scale;
        FC(row_scale)(g, c, (T)(G / s));
        g[y] = (T)(G * expm1(lp));
    }
    return at * qg * (0.0 - lp);
}

static double FC(focal_prob_row)(const FC(loss_ctx) *k, int64_t i) {
    const int64_t c = k->c;
    const fastce_options *o = k->o;
    const T *x = k->x + i * k->rs, *t = k->t + i * k->trs;
    T *g = k->grad ? k->grad + i * k->grs : NULL;
    const T m = FC(row_max)(x, c);
    const double ls = log1p(FC(row_sumexp_m1)(x, c, m));
    double l = 0.0, Gs = 0.0, q, G;
    for (int64_t j = 0; j < c; j++) {
        const double a = fc_focal_alpha(o, j) * (double)t[j];
        if (a == 0.0) continue; /* 0 log 0 := 0 */
        const double lp = ((double)x[j] - (double)m) - ls;
        l += a * fc_focal_term(lp, o->gamma, &q, &G) * (0.0 - lp);
        Gs += a * G;
    }
    if (g) {
        for (int64_t j = 0; j < c; j++) {
            const double a = fc_focal_alpha(o, j) * (double)t[j];
            const double lp = ((double)x[j] - (double)m) - ls;
            if (a == 0.0) {
                g[j] = (T)(k->scale * exp(lp) * Gs);
                continue;
            }
            fc_focal_term(lp, o->gamma, &q, &G);
            const double gj = a * G;
            g[j] = (T)(k->scale * (exp(lp) * (Gs - gj) - gj * q));
        }
    }
    return l;
}

int FC(fastce_focal_loss)(const T *x, int64_t n, int64_t c, int64_t rs, const int64_t *y,
                          const fastce_options *opt, double *loss, T *grad, int64_t grs) {
    fastce_options o;
    int st = FC(check_loss_args)(x, n, c, rs, y, NULL, 0, opt, &o, loss, grad, grs);
    if (st) return st;
    double count;
    if ((st = FC(check_index_targets)(y, n, c, o.ignore_index, NULL, &count))) return st;
    FC(loss_ctx) k = {x, rs, c, y, NULL, 0, &o, fc_grad_scale(o.reduction, count), 0.0, grad,
                      grs, NULL};
    return FC(run_rows)(&k, FC(focal_index_row), n, count, loss);
}

int FC(fastce_focal_loss_prob)(const T *x, int64_t n, int64_t c, int64_t rs, const T *t,
                               int64_t trs, const fastce_options *opt, double *loss, T *grad,
                               int64_t grs) {
    fastce_options o;
    int st = FC(check_loss_args)(x, n, c, rs, NULL, t, trs, opt, &o, loss, grad, grs);
    if (st) return st;
    FC(loss_ctx) k = {x, rs, c, NULL, t, trs, &o, fc_grad_scale(o.reduction, (double)n), 0.0,
                      grad, grs, NULL};
    return FC(run_rows)(&k, FC(focal_prob_row), n, (double)n, loss);
}
