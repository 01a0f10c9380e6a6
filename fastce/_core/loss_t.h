/*
 * loss_t.h -- the row driver shared by every loss, for one dtype.
 *
 * A loss supplies a row function computing one row's loss (and, when
 * k->grad is set, that row's gradient); run_rows calls it over fixed blocks
 * of rows in parallel and reduces deterministically (see internal.h).
 */
typedef struct FC(loss_ctx) {
    const T *x;              /* logits, rows rs apart */
    int64_t rs, c;
    const int64_t *y;        /* class-index targets, or NULL */
    const T *t;              /* probability / binary targets, rows trs apart, or NULL */
    int64_t trs;
    const fastce_options *o;
    double scale;            /* gradient scale of the reduction */
    double wsum;             /* sum of class weights (label smoothing) */
    T *grad;                 /* gradient rows grs apart, or NULL */
    int64_t grs;
    double *elem_loss;       /* elementwise losses for REDUCTION_NONE, or NULL */
} FC(loss_ctx);

typedef double (*FC(row_fn))(const FC(loss_ctx) *k, int64_t i);

/* Fill the loss output: per-row losses (NONE, unless the row function writes
 * elementwise ones itself) or the block-ordered sum, divided by `denominator`
 * for MEAN. */
/* Rows [lo, hi) of one block: their losses summed in row order (and written
 * per row for NONE unless the row function writes elementwise ones). */
static inline double FC(run_block)(const FC(loss_ctx) *k, FC(row_fn) fn, int64_t lo, int64_t hi,
                                   double *loss) {
    const int none = k->o->reduction == FASTCE_REDUCTION_NONE;
    double acc = 0.0;
    for (int64_t i = lo; i < hi; i++) {
        const double l = fn(k, i);
        if (!none) acc += l;
        else if (!k->elem_loss) loss[i] = l;
    }
    return acc;
}

static int FC(run_rows)(const FC(loss_ctx) *k, FC(row_fn) fn, int64_t n, double denominator,
                        double *loss) {
    const int red = k->o->reduction;
    const int64_t br = fc_block_rows(k->c), nb = fc_n_blocks(n, br);
    double stack_partial[FC_STACK_BLOCKS], *partial = stack_partial;
    if (nb > FC_STACK_BLOCKS) {
        partial = (double *)malloc((size_t)nb * sizeof(double));
        if (!partial) return FASTCE_ERR_ALLOC;
    }
    const int nt = fc_threads_for(k->o, n, k->c, nb);
    const int64_t chunk = 1;
    FC_PARALLEL_FOR(b, nb, {
        partial[b] = FC(run_block)(k, fn, b * br, b * br + br < n ? b * br + br : n, loss);
    });
    if (red != FASTCE_REDUCTION_NONE) {
        const double total = fc_sum_ordered(partial, nb);
        loss[0] = red == FASTCE_REDUCTION_MEAN ? total / denominator : total;
    }
    if (partial != stack_partial) free(partial);
    return FASTCE_OK;
}

/* A row whose class-index target is ignore_index: loss 0, gradient row 0. */
static inline int FC(skip_ignored_row)(const FC(loss_ctx) *k, int64_t i) {
    if (k->y[i] != k->o->ignore_index) return 0;
    if (k->grad) {
        T *g = k->grad + i * k->grs;
        for (int64_t j = 0; j < k->c; j++) g[j] = 0;
    }
    return 1;
}

/* Class-index targets: every target is ignore_index or in [0, c); returns
 * the MEAN denominator sum_{i not ignored} w[y_i] (w = NULL: count) in
 * *denominator. Serial, in row order. */
static int FC(check_index_targets)(const int64_t *y, int64_t n, int64_t c, int64_t ignore_index,
                                   const double *w, double *denominator) {
    double d = 0.0;
    for (int64_t i = 0; i < n; i++) {
        int64_t yi = y[i];
        if (yi == ignore_index) continue;
        if (yi < 0 || yi >= c) return FASTCE_ERR_TARGET_OUT_OF_RANGE;
        d += w ? w[yi] : 1.0;
    }
    *denominator = d;
    return FASTCE_OK;
}

/* Common checks of a loss call: options, logits, target(s), gradient, loss. */
static int FC(check_loss_args)(const T *x, int64_t n, int64_t c, int64_t rs, const int64_t *y,
                               const T *t, int64_t trs, const fastce_options *opt,
                               fastce_options *o, const double *loss, const T *grad,
                               int64_t grs) {
    int st = fc_resolve_options(opt, o);
    if (st) return st;
    if ((st = fc_check_matrix(x, n, c, rs, sizeof(T), 0))) return st;
    if (n > 0 && c == 0) return FASTCE_ERR_BAD_SIZE;
    if (y == NULL && t == NULL && n > 0) return FASTCE_ERR_NULL_POINTER;
    if (y && (st = fc_check_matrix(y, n, 1, 1, sizeof(int64_t), 0))) return st;
    if (t && (st = fc_check_matrix(t, n, c, trs, sizeof(T), 0))) return st;
    if (trs < 0 || grs < 0) return FASTCE_ERR_BAD_SIZE;
    if (grad && (st = fc_check_matrix(grad, n, c, grs, sizeof(T), 1))) return st;
    /* REDUCTION_NONE writes up to n * c doubles (the elementwise losses) */
    if (o->reduction == FASTCE_REDUCTION_NONE &&
        (st = fc_check_matrix(loss, n, c, c, sizeof(double), 1)))
        return st;
    if (!loss) return FASTCE_ERR_NULL_POINTER;
    if ((st = fc_check_finite(o->class_weight, c))) return st;
    if ((st = fc_check_finite(o->class_alpha, c))) return st;
    if ((st = fc_check_finite(o->pos_weight, c))) return st;
    return FASTCE_OK;
}
