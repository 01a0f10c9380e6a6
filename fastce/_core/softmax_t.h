/* softmax_t.h -- the softmax-family drivers for one dtype (see softmax.c). */

int FC(fastce_log_softmax)(const T *x, int64_t n, int64_t c, int64_t rs, T *out, int64_t ors,
                           const fastce_options *opt) {
    fastce_options o;
    int st = fc_check_softmax_args(x, n, c, rs, out, ors, sizeof(T), opt, &o);
    if (st || n == 0 || c == 0) return st;
    const int64_t chunk = fc_block_rows(c);
    const int nt = fc_threads_for(&o, n, c, fc_n_blocks(n, chunk));
    FC_PARALLEL_FOR(i, n, {
        const T *xi = x + i * rs;
        const T m = FC(row_max)(xi, c);
        FC(row_log_softmax)(xi, c, m, (T)log1p(FC(row_sumexp_m1)(xi, c, m)), out + i * ors);
    });
    return FASTCE_OK;
}

int FC(fastce_softmax)(const T *x, int64_t n, int64_t c, int64_t rs, T *out, int64_t ors,
                       const fastce_options *opt) {
    fastce_options o;
    int st = fc_check_softmax_args(x, n, c, rs, out, ors, sizeof(T), opt, &o);
    if (st || n == 0 || c == 0) return st;
    const int64_t chunk = fc_block_rows(c);
    const int nt = fc_threads_for(&o, n, c, fc_n_blocks(n, chunk));
    FC_PARALLEL_FOR(i, n, {
        const T *xi = x + i * rs;
        T *oi = out + i * ors;
        const T m = FC(row_max)(xi, c);
        const double s = 1.0 + FC(row_sumexp_m1_store)(xi, c, m, oi);
        FC(row_scale)(oi, c, (T)(1.0 / s));
    });
    return FASTCE_OK;
}

int FC(fastce_logsumexp)(const T *x, int64_t n, int64_t c, int64_t rs, T *out,
                         const fastce_options *opt) {
    fastce_options o;
    int st = fc_resolve_options(opt, &o);
    if (st) return st;
    if ((st = fc_check_matrix(x, n, c, rs, sizeof(T), 0))) return st;
    if ((st = fc_check_matrix(out, n, 1, 1, sizeof(T), 1))) return st;
    if (n == 0) return FASTCE_OK;
    if (c == 0) { /* the log of an empty sum; x is not touched (it may be NULL) */
        for (int64_t i = 0; i < n; i++) out[i] = -FC_T_INF;
        return FASTCE_OK;
    }
    const int64_t chunk = fc_block_rows(c);
    const int nt = fc_threads_for(&o, n, c, fc_n_blocks(n, chunk));
    FC_PARALLEL_FOR(i, n, {
        const T *xi = x + i * rs;
        out[i] = (T)FC(row_lse)(xi, c, FC(row_max)(xi, c));
    });
    return FASTCE_OK;
}
