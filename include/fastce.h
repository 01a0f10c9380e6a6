/*
 * fastce.h -- the public C API of fastce: numerically stable softmax-family
 * functions and losses, with gradients fused into the forward pass, on
 * multicore CPUs (OpenMP).
 *
 * Layout contract (every function):
 *   - logits are row-major (n_rows, n_classes); the class dimension is
 *     contiguous (element stride 1); consecutive rows are `row_stride`
 *     ELEMENTS apart (row_stride >= 0; 0 broadcasts one row to all rows).
 *   - sizes, strides, class-index targets are int64_t (N * C > 2^31 works).
 *   - class weights, alpha, pos_weight, elementwise weights are double.
 *   - loss output is double: 1 value for FASTCE_REDUCTION_MEAN / _SUM,
 *     n_rows values (per-sample losses) for _NONE -- or n_rows * n_classes
 *     values (row-major) for the elementwise losses (binary_cross_entropy,
 *     sigmoid_focal_loss).
 *   - grad (may be NULL: forward only) receives d(reduced loss)/d(logits);
 *     for _NONE the gradient of the sum of the per-sample losses.
 *   - reductions accumulate in double over fixed blocks of rows combined in a
 *     fixed order: results are bit-identical for any n_threads.
 *
 * Errors: every function validates pointers, sizes, strides, targets and
 * options first and returns a fastce_status; on an error nothing is written.
 * Sizes and strides must be >= 0 (grad_row_stride too, even with grad NULL)
 * and every byte offset they imply must fit in ptrdiff_t (FASTCE_ERR_BAD_SIZE).
 * No function aborts, exits, prints or reads/writes out of bounds.
 *
 * Thread safety: all functions are reentrant and may be called concurrently
 * from any number of threads on distinct outputs; inputs are never written.
 * Output arrays must not overlap inputs.
 *
 * Numerics: max-subtraction and log-sum-exp forms; +-inf and NaN propagate as
 * IEEE prescribes (the library is never built with fast-math). 0 * log 0 := 0
 * for probability targets. 1 - p_t is formed as -expm1(log p_t). Gradients are
 * finite wherever the true gradient is finite.
 */
#ifndef FASTCE_H
#define FASTCE_H

#include <stdint.h> /* int64_t */

#ifdef __cplusplus
extern "C" {
#endif

/* Only symbols marked FASTCE_API leave libfastce.so. */
#if defined(FASTCE_BUILDING_LIBRARY) && defined(__GNUC__)
#define FASTCE_API __attribute__((visibility("default")))
#else
#define FASTCE_API
#endif

#define FASTCE_VERSION_MAJOR 0
#define FASTCE_VERSION_MINOR 1
#define FASTCE_VERSION_PATCH 0
#define FASTCE_VERSION_NUMBER \
    (FASTCE_VERSION_MAJOR * 10000 + FASTCE_VERSION_MINOR * 100 + FASTCE_VERSION_PATCH)

/* The version of the linked library (compare with FASTCE_VERSION_NUMBER). */
FASTCE_API int fastce_version_number(void);

/* Status codes. The numeric values are stable across releases. */
typedef enum {
    FASTCE_OK = 0,
    FASTCE_ERR_NULL_POINTER = 1,    /* a required pointer is NULL */
    FASTCE_ERR_BAD_SIZE = 2,        /* negative size or stride, or size overflow */
    FASTCE_ERR_TARGET_OUT_OF_RANGE = 3, /* class index not in [0, n_classes) and not ignore_index */
    FASTCE_ERR_BAD_ARGUMENT = 4,    /* option out of its domain (reduction, smoothing, gamma, NaN) */
    FASTCE_ERR_ALLOC = 5            /* scratch memory could not be allocated */
} fastce_status;

/* A static string naming the status ("FASTCE_OK", ...); "FASTCE_UNKNOWN_STATUS" otherwise. */
FASTCE_API const char *fastce_status_name(int status);

typedef enum {
    FASTCE_REDUCTION_NONE = 0,
    FASTCE_REDUCTION_MEAN = 1,
    FASTCE_REDUCTION_SUM = 2
} fastce_reduction;

/*
 * Options shared by all functions; each function uses the fields it names.
 * Initialise with FASTCE_OPTIONS_INIT (or fastce_options_default()) and set
 * the fields you need: new fields are only ever appended, with defaults that
 * keep old behaviour. Every function checks the domain of every scalar field
 * (reduction, n_threads >= 0, label_smoothing in [0, 1], gamma >= 0, alpha
 * finite; NaN fails) and that the per-class vectors that are set (class_alpha,
 * class_weight, pos_weight) are finite, whether it uses them or not
 * (FASTCE_ERR_BAD_ARGUMENT). The elementwise `weight` is not scanned: a NaN
 * there propagates to the loss.
 */
typedef struct fastce_options {
    int reduction;             /* fastce_reduction; default MEAN */
    int n_threads;             /* 0 = library default (all cores); >= 0 */
    int64_t ignore_index;      /* class-index targets equal to it are skipped; default -100 */
    double label_smoothing;    /* cross_entropy, in [0, 1]; default 0 */
    double gamma;              /* focal exponent, >= 0; default 2 */
    double alpha;              /* focal alpha, finite: < 0 = no alpha factor (default -1);
                                  focal_loss: every class; sigmoid_focal_loss: alpha for
                                  positives, 1 - alpha for negatives (torchvision) */
    const double *class_alpha; /* focal_loss: n_classes per-class alpha (overrides alpha); NULL */
    const double *class_weight;/* cross_entropy: n_classes class weights; NULL = all 1 */
    const double *pos_weight;  /* binary_cross_entropy: n_classes weights of the positive term; NULL */
    const double *weight;      /* binary_cross_entropy: elementwise weight; NULL = all 1 */
    int64_t weight_row_stride; /* its strides in elements (0 broadcasts) */
    int64_t weight_col_stride;
} fastce_options;

#define FASTCE_OPTIONS_INIT \
    { FASTCE_REDUCTION_MEAN, 0, -100, 0.0, 2.0, -1.0, 0, 0, 0, 0, 0, 0 }

/* The defaults above as a value (for languages without C initialisers). */
FASTCE_API fastce_options fastce_options_default(void);

/* Threads: the default used when options.n_threads == 0 (initially the
 * OpenMP default, usually the number of cores). Not thread-safe with respect
 * to concurrent calls of itself; results never depend on it. */
FASTCE_API void fastce_set_num_threads(int n_threads);
FASTCE_API int fastce_get_num_threads(void);

/*
 * Softmax family. out[i, c] (log_softmax, softmax) or out[i] (logsumexp).
 *   log_softmax[i, c] = x[i, c] - m_i - log(sum_k exp(x[i, k] - m_i)),  m_i = max_k x[i, k]
 *   softmax[i, c]     = exp(log_softmax[i, c])
 *   logsumexp[i]      = m_i + log(sum_k exp(x[i, k] - m_i));  an all -inf row gives -inf.
 * x: n_rows rows of n_classes elements, rows row_stride apart; out rows out_row_stride
 * apart. opt may be NULL (defaults); only n_threads is used, every field is checked.
 * Returns FASTCE_OK, FASTCE_ERR_NULL_POINTER (x or out NULL while n_rows*n_classes > 0),
 * FASTCE_ERR_BAD_SIZE (negative size/stride, out rows overlapping, n_classes == 0 for
 * logsumexp of n_rows > 0 is allowed and gives -inf), FASTCE_ERR_BAD_ARGUMENT (n_threads < 0).
 */
FASTCE_API int fastce_log_softmax_f32(const float *x, int64_t n_rows, int64_t n_classes,
                                      int64_t row_stride, float *out, int64_t out_row_stride,
                                      const fastce_options *opt);
FASTCE_API int fastce_log_softmax_f64(const double *x, int64_t n_rows, int64_t n_classes,
                                      int64_t row_stride, double *out, int64_t out_row_stride,
                                      const fastce_options *opt);
FASTCE_API int fastce_softmax_f32(const float *x, int64_t n_rows, int64_t n_classes,
                                  int64_t row_stride, float *out, int64_t out_row_stride,
                                  const fastce_options *opt);
FASTCE_API int fastce_softmax_f64(const double *x, int64_t n_rows, int64_t n_classes,
                                  int64_t row_stride, double *out, int64_t out_row_stride,
                                  const fastce_options *opt);
FASTCE_API int fastce_logsumexp_f32(const float *x, int64_t n_rows, int64_t n_classes,
                                    int64_t row_stride, float *out, const fastce_options *opt);
FASTCE_API int fastce_logsumexp_f64(const double *x, int64_t n_rows, int64_t n_classes,
                                    int64_t row_stride, double *out, const fastce_options *opt);

/*
 * Cross-entropy with class-index targets (torch.nn.functional.cross_entropy):
 *   l_i = (1 - eps) * w[y_i] * (-logp[i, y_i]) + eps / C * sum_c w[c] * (-logp[i, c])
 *   (w = class_weight or 1, eps = label_smoothing); rows with y_i == ignore_index have
 *   l_i = 0 and a zero gradient.
 *   MEAN = sum_i l_i / sum_{i not ignored} w[y_i]  (NaN if that sum is 0; gradient 0 then),
 *   SUM = sum_i l_i, NONE = l_i.
 *   grad[i, c] = s * (a_i * p[i, c] - (1 - eps) w[y_i] [c == y_i] - eps / C * w[c]),
 *   a_i = (1 - eps) w[y_i] + eps / C * sum_c w[c], s = 1 / denominator for MEAN else 1.
 * target: n_rows int64 class indices. loss: 1 or n_rows doubles. grad: NULL or
 * n_rows rows of n_classes, grad_row_stride apart.
 * Returns FASTCE_OK, _NULL_POINTER, _BAD_SIZE (n_classes == 0 with n_rows > 0, negative
 * sizes/strides), _TARGET_OUT_OF_RANGE, _BAD_ARGUMENT (reduction, label_smoothing outside
 * [0, 1] or NaN, class_weight with NaN, n_threads < 0), _ALLOC.
 */
FASTCE_API int fastce_cross_entropy_f32(const float *logits, int64_t n_rows, int64_t n_classes,
                                        int64_t row_stride, const int64_t *target,
                                        const fastce_options *opt, double *loss,
                                        float *grad, int64_t grad_row_stride);
FASTCE_API int fastce_cross_entropy_f64(const double *logits, int64_t n_rows, int64_t n_classes,
                                        int64_t row_stride, const int64_t *target,
                                        const fastce_options *opt, double *loss,
                                        double *grad, int64_t grad_row_stride);

/*
 * Cross-entropy with probability targets t (same layout as logits, rows
 * target_row_stride apart):
 *   t'[i, c] = (1 - eps) t[i, c] + eps / C;  l_i = -sum_c w[c] t'[i, c] logp[i, c]
 *   (a term with t' == 0 or w == 0 is 0, even where logp = -inf);
 *   MEAN = sum_i l_i / n_rows (torch's rule, also with weights); ignore_index is not used.
 *   grad[i, c] = s * (p[i, c] * sum_k w[k] t'[i, k] - w[c] t'[i, c]).
 * Returns as fastce_cross_entropy_f32, without _TARGET_OUT_OF_RANGE.
 */
FASTCE_API int fastce_cross_entropy_prob_f32(const float *logits, int64_t n_rows,
                                             int64_t n_classes, int64_t row_stride,
                                             const float *target, int64_t target_row_stride,
                                             const fastce_options *opt, double *loss,
                                             float *grad, int64_t grad_row_stride);
FASTCE_API int fastce_cross_entropy_prob_f64(const double *logits, int64_t n_rows,
                                             int64_t n_classes, int64_t row_stride,
                                             const double *target, int64_t target_row_stride,
                                             const fastce_options *opt, double *loss,
                                             double *grad, int64_t grad_row_stride);

/*
 * Binary cross-entropy with logits, elementwise (torch BCEWithLogitsLoss):
 *   l = weight * (pos_weight[c] * t * softplus(-x) + (1 - t) * softplus(x))
 *   grad = s * weight * ((1 - t) * sigmoid(x) - pos_weight[c] * t * sigmoid(-x))
 *   MEAN divides by n_rows * n_classes. loss: 1 or n_rows * n_classes doubles.
 * Returns FASTCE_OK, _NULL_POINTER, _BAD_SIZE, _BAD_ARGUMENT, _ALLOC.
 */
FASTCE_API int fastce_binary_cross_entropy_f32(const float *logits, int64_t n_rows,
                                               int64_t n_classes, int64_t row_stride,
                                               const float *target, int64_t target_row_stride,
                                               const fastce_options *opt, double *loss,
                                               float *grad, int64_t grad_row_stride);
FASTCE_API int fastce_binary_cross_entropy_f64(const double *logits, int64_t n_rows,
                                               int64_t n_classes, int64_t row_stride,
                                               const double *target, int64_t target_row_stride,
                                               const fastce_options *opt, double *loss,
                                               double *grad, int64_t grad_row_stride);

/*
 * Softmax focal loss (Lin et al.), class-index targets:
 *   l_i = -alpha_t (1 - p_t)^gamma log p_t,  p_t = p[i, y_i],  1 - p_t = -expm1(log p_t),
 *   alpha_t = class_alpha[y_i] if given, else alpha if alpha >= 0, else 1.
 *   Ignored rows give 0; MEAN divides by the number of non-ignored rows (NaN if none).
 * Returns as fastce_cross_entropy_f32 (_BAD_ARGUMENT also for gamma < 0 or NaN).
 */
FASTCE_API int fastce_focal_loss_f32(const float *logits, int64_t n_rows, int64_t n_classes,
                                     int64_t row_stride, const int64_t *target,
                                     const fastce_options *opt, double *loss,
                                     float *grad, int64_t grad_row_stride);
FASTCE_API int fastce_focal_loss_f64(const double *logits, int64_t n_rows, int64_t n_classes,
                                     int64_t row_stride, const int64_t *target,
                                     const fastce_options *opt, double *loss,
                                     double *grad, int64_t grad_row_stride);

/*
 * Softmax focal loss with probability targets (Keras categorical focal form):
 *   l_i = -sum_c alpha_c t[i, c] (1 - p[i, c])^gamma log p[i, c]   (t == 0 terms are 0);
 *   MEAN divides by n_rows.
 */
FASTCE_API int fastce_focal_loss_prob_f32(const float *logits, int64_t n_rows,
                                          int64_t n_classes, int64_t row_stride,
                                          const float *target, int64_t target_row_stride,
                                          const fastce_options *opt, double *loss,
                                          float *grad, int64_t grad_row_stride);
FASTCE_API int fastce_focal_loss_prob_f64(const double *logits, int64_t n_rows,
                                          int64_t n_classes, int64_t row_stride,
                                          const double *target, int64_t target_row_stride,
                                          const fastce_options *opt, double *loss,
                                          double *grad, int64_t grad_row_stride);

/*
 * Sigmoid focal loss (torchvision.ops.sigmoid_focal_loss), elementwise:
 *   p = sigmoid(x), ce = softplus(x) - t x, m = 1 - p_t = p (1 - t) + (1 - p) t,
 *   l = alpha_t ce m^gamma, alpha_t = alpha t + (1 - alpha)(1 - t) if alpha >= 0 else 1.
 *   MEAN divides by n_rows * n_classes.
 */
FASTCE_API int fastce_sigmoid_focal_loss_f32(const float *logits, int64_t n_rows,
                                             int64_t n_classes, int64_t row_stride,
                                             const float *target, int64_t target_row_stride,
                                             const fastce_options *opt, double *loss,
                                             float *grad, int64_t grad_row_stride);
FASTCE_API int fastce_sigmoid_focal_loss_f64(const double *logits, int64_t n_rows,
                                             int64_t n_classes, int64_t row_stride,
                                             const double *target, int64_t target_row_stride,
                                             const fastce_options *opt, double *loss,
                                             double *grad, int64_t grad_row_stride);

#ifdef __cplusplus
}
#endif

#endif /* FASTCE_H */
