/* binary_t.h -- BCE-with-logits and sigmoid focal kernels for one dtype (math in binary.c). */

/* a * v, but 0 when a == 0 (so 0 * inf := 0) */
#define FC_XMUL(a, v) ((a) != 0 ? (a) * (v) : 0)

/* one BCE element: returns the loss, *gout the gradient (before the reduction scale) */
static inline T FC(bce_elem)(T xv, T tv, T pw, T wv, T *gout) {
    const T e = FC_EXP(-(xv < 0 ? -xv : xv)), L = FC_LOG1P(e), inv = (T)1 / ((T)1 + e);
    const T sp = (xv > 0 ? xv : (T)0) + L, spn = (xv < 0 ? -xv : (T)0) + L;
    const T sig = xv >= 0 ? inv : e * inv, sign = xv >= 0 ? e * inv : inv;
    const T pwt = pw * tv, nt = (T)1 - tv;
    *gout = wv * (nt * sig - pwt * sign);
    return wv * (FC_XMUL(pwt, spn) + FC_XMUL(nt, sp));
}

/* one sigmoid-focal element; `gamma2` selects the gamma == 2 fast path */
static inline T FC(sfl_elem)(T xv, T tv, double alpha, double gamma, int gamma2, T *gout) {
    const T e = FC_EXP(-(xv < 0 ? -xv : xv)), L = FC_LOG1P(e), inv = (T)1 / ((T)1 + e);
    const T sp = (xv > 0 ? xv : (T)0) + L, spn = (xv < 0 ? -xv : (T)0) + L;
    const T p = xv >= 0 ? inv : e * inv, pn = xv >= 0 ? e * inv : inv, nt = (T)1 - tv;
    const T ce = FC_XMUL(tv, spn) + FC_XMUL(nt, sp);
    const T mm = p * nt + pn * tv;
    const T mg = gamma2 ? mm * mm : (T)fc_pow_gamma((double)mm, gamma);
    const T at = alpha >= 0 ? (T)alpha * tv + (T)(1 - alpha) * nt : (T)1;
    const T r = mm > 0 ? p * pn / mm : (T)1;
    const T cer = FC_XMUL(r, ce); /* ce r -> 0 as x -> +-inf (r ~ e^-|x|), also at inf */
    *gout = at * ((p * nt - pn * tv) * mg + (T)gamma * cer * mg * ((T)1 - 2 * tv));
    return at * ce * mg;
}

/* The elementwise loop over one row with ELEM(j, &gv) giving element j's loss,
 * specialised on which outputs exist so that the loop body has no branches
 * (GCC vectorises it then). Accumulates the row's loss into `acc`. */
#define FC_ELEMENTWISE_LOOP(ELEM)                                                  \
    do {                                                                          \
        T gv_;                                                                    \
        if (g && el) {                                                            \
            _Pragma("omp simd reduction(+ : acc) private(gv_)")                   \
            for (int64_t j = 0; j < c; j++) {                                     \
                const T l_ = ELEM(j, &gv_);                                       \
                g[j] = sc * gv_;                                                  \
                el[j] = (double)l_;                                               \
                acc += (double)l_;                                                \
            }                                                                     \
        } else if (g) {                                                           \
            _Pragma("omp simd reduction(+ : acc) private(gv_)")                   \
            for (int64_t j = 0; j < c; j++) {                                     \
                const T l_ = ELEM(j, &gv_);                                       \
                g[j] = sc * gv_;                                                  \
                acc += (double)l_;                                                \
            }                                                                     \
        } else if (el) {                                                          \
            _Pragma("omp simd reduction(+ : acc) private(gv_)")                   \
            for (int64_t j = 0; j < c; j++) {                                     \
                const T l_ = ELEM(j, &gv_);                                       \
                el[j] = (double)l_;                                               \
                acc += (double)l_;                                                \
            }                                                                     \
        } else {                                                                  \
            _Pragma("omp simd reduction(+ : acc) private(gv_)")                   \
            for (int64_t j = 0; j < c; j++) acc += (double)ELEM(j, &gv_);         \
        }                                                                         \
    } while (0)

FC_SIMD_CLONES
static double FC(bce_row)(const FC(loss_ctx) *k, int64_t i) {
    const int64_t c = k->c;
    const fastce_options *o = k->o;
    const T *x = k->x + i * k->rs, *t = k->t + i * k->trs;
    const double *pw = o->pos_weight;
    const double *w = o->weight ? o->weight + i * o->weight_row_stride : NULL;
    const int64_t wcs = o->weight_col_stride;
    T *g = k->grad ? k->grad + i * k->grs : NULL;
    double *el = k->elem_loss ? k->elem_loss + i * c : NULL;
    const T sc = (T)k->scale;
    double acc = 0.0;
    /* four branch-free loops: a weight per row or per element, pos_weight or none */
    if (!w || wcs == 0) {
        const T wv = w ? (T)w[0] : (T)1;
#define FC_BCE_ROW_W_PW(j, gp) FC(bce_elem)(x[j], t[j], (T)pw[j], wv, gp)
#define FC_BCE_ROW_W(j, gp) FC(bce_elem)(x[j], t[j], (T)1, wv, gp)
        if (pw) FC_ELEMENTWISE_LOOP(FC_BCE_ROW_W_PW);
        else FC_ELEMENTWISE_LOOP(FC_BCE_ROW_W);
#undef FC_BCE_ROW_W_PW
#undef FC_BCE_ROW_W
    } else {
#define FC_BCE_ELEM_W_PW(j, gp) FC(bce_elem)(x[j], t[j], (T)pw[j], (T)w[(j) * wcs], gp)
#define FC_BCE_ELEM_W(j, gp) FC(bce_elem)(x[j], t[j], (T)1, (T)w[(j) * wcs], gp)
        if (pw) FC_ELEMENTWISE_LOOP(FC_BCE_ELEM_W_PW);
        else FC_ELEMENTWISE_LOOP(FC_BCE_ELEM_W);
#undef FC_BCE_ELEM_W_PW
#undef FC_BCE_ELEM_W
    }
    return acc;
}

FC_SIMD_CLONES
static double FC(sfl_row)(const FC(loss_ctx) *k, int64_t i) {
    const int64_t c = k->c;
    const fastce_options *o = k->o;
    const T *x = k->x + i * k->rs, *t = k->t + i * k->trs;
    T *g = k->grad ? k->grad + i * k->grs : NULL;
    double *el = k->elem_loss ? k->elem_loss + i * c : NULL;
    const T sc = (T)k->scale;
    const double alpha = o->alpha, gamma = o->gamma;
    double acc = 0.0;
    if (gamma == 2.0) {
#define FC_SFL_G2(j, gp) FC(sfl_elem)(x[j], t[j], alpha, 2.0, 1, gp)
        FC_ELEMENTWISE_LOOP(FC_SFL_G2);
#undef FC_SFL_G2
    } else {
#define FC_SFL_G(j, gp) FC(sfl_elem)(x[j], t[j], alpha, gamma, 0, gp)
        FC_ELEMENTWISE_LOOP(FC_SFL_G);
#undef FC_SFL_G
    }
    return acc;
}

#undef FC_ELEMENTWISE_LOOP

static int FC(elementwise)(const T *x, int64_t n, int64_t c, int64_t rs, const T *t, int64_t trs,
                           const fastce_options *opt, double *loss, T *grad, int64_t grs,
                           FC(row_fn) fn) {
    fastce_options o;
    int st = FC(check_loss_args)(x, n, c, rs, NULL, t, trs, opt, &o, loss, grad, grs);
    if (st) return st;
    if (o.weight && (st = fc_check_strided(o.weight, n, c, o.weight_row_stride,
                                           o.weight_col_stride, sizeof(double))))
        return st;
    if (n == 0) { /* nothing to read: empty sums (and no per-element losses) */
        if (o.reduction != FASTCE_REDUCTION_NONE)
            loss[0] = o.reduction == FASTCE_REDUCTION_MEAN ? NAN : 0.0;
        return FASTCE_OK;
    }
    const double count = (double)n * (double)c;
    FC(loss_ctx) k = {x, rs, c, NULL, t, trs, &o, fc_grad_scale(o.reduction, count), 0.0, grad,
                      grs, o.reduction == FASTCE_REDUCTION_NONE ? loss : NULL};
    return FC(run_rows)(&k, fn, n, count, loss);
}

int FC(fastce_binary_cross_entropy)(const T *x, int64_t n, int64_t c, int64_t rs, const T *t,
                                    int64_t trs, const fastce_options *opt, double *loss,
                                    T *grad, int64_t grs) {
    return FC(elementwise)(x, n, c, rs, t, trs, opt, loss, grad, grs, FC(bce_row));
}

int FC(fastce_sigmoid_focal_loss)(const T *x, int64_t n, int64_t c, int64_t rs, const T *t,
                                  int64_t trs, const fastce_options *opt, double *loss, T *grad,
                                  int64_t grs) {
    return FC(elementwise)(x, n, c, rs, t, trs, opt, loss, grad, grs, FC(sfl_row));
}

#undef FC_XMUL
