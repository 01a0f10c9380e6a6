/*
 * capi_dispatch.h -- one fastce C API call described as data, and the two
 * dtype dispatchers that make it (shared by tests/c/capi_driver.c and
 * tests/fuzz/fuzz_capi.c).
 */
#ifndef CAPI_DISPATCH_H
#define CAPI_DISPATCH_H

#include <fastce.h>

#include <stdint.h> /* int64_t */

/* Every function of fastce.h that computes something, dtype aside. */
enum capi_fn {
    LOG_SOFTMAX, SOFTMAX, LOGSUMEXP, CROSS_ENTROPY, CROSS_ENTROPY_PROB, BINARY_CROSS_ENTROPY,
    FOCAL_LOSS, FOCAL_LOSS_PROB, SIGMOID_FOCAL_LOSS, CAPI_N_FNS
};

/* The arguments of one call; `out` is the softmax-family output or the gradient,
 * `ors` its row stride; `t`/`trs` the dense targets, `y` the class indices. */
struct capi_call {
    int fn;
    int64_t n, c, rs, trs, ors;
    const void *x, *t;
    const int64_t *y;
    void *out;
    double *loss;
    const fastce_options *opt;
};

#define CAPI_DEFINE_DISPATCH(T, S)                                                                \
    static int capi_dispatch_##S(const struct capi_call *k) {                                    \
        const T *x = (const T *)k->x, *t = (const T *)k->t;                                       \
        T *out = (T *)k->out;                                                                     \
        switch (k->fn) {                                                                          \
        case LOG_SOFTMAX:                                                                         \
            return fastce_log_softmax_##S(x, k->n, k->c, k->rs, out, k->ors, k->opt);             \
        case SOFTMAX: return fastce_softmax_##S(x, k->n, k->c, k->rs, out, k->ors, k->opt);       \
        case LOGSUMEXP: return fastce_logsumexp_##S(x, k->n, k->c, k->rs, out, k->opt);           \
        case CROSS_ENTROPY:                                                                       \
            return fastce_cross_entropy_##S(x, k->n, k->c, k->rs, k->y, k->opt, k->loss, out,     \
                                            k->ors);                                              \
        case CROSS_ENTROPY_PROB:                                                                  \
            return fastce_cross_entropy_prob_##S(x, k->n, k->c, k->rs, t, k->trs, k->opt,         \
                                                 k->loss, out, k->ors);                           \
        case BINARY_CROSS_ENTROPY:                                                                \
            return fastce_binary_cross_entropy_##S(x, k->n, k->c, k->rs, t, k->trs, k->opt,       \
                                                   k->loss, out, k->ors);                         \
        case FOCAL_LOSS:                                                                          \
            return fastce_focal_loss_##S(x, k->n, k->c, k->rs, k->y, k->opt, k->loss, out,        \
                                         k->ors);                                                 \
        case FOCAL_LOSS_PROB:                                                                     \
            return fastce_focal_loss_prob_##S(x, k->n, k->c, k->rs, t, k->trs, k->opt, k->loss,   \
                                              out, k->ors);                                       \
        case SIGMOID_FOCAL_LOSS:                                                                  \
            return fastce_sigmoid_focal_loss_##S(x, k->n, k->c, k->rs, t, k->trs, k->opt,         \
                                                 k->loss, out, k->ors);                           \
        default: return -1;                                                                       \
        }                                                                                         \
    }
CAPI_DEFINE_DISPATCH(float, f32)
CAPI_DEFINE_DISPATCH(double, f64)
#undef CAPI_DEFINE_DISPATCH

/* Make the call in the dtype of `elem_size` bytes (4 or 8). */
static int capi_dispatch(const struct capi_call *k, int elem_size) {
    return elem_size == 4 ? capi_dispatch_f32(k) : capi_dispatch_f64(k);
}

#endif /* CAPI_DISPATCH_H */
