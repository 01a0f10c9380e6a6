# Declarations of include/fastce.h for Cython (no math here).
from libc.stdint cimport int64_t

cdef extern from "fastce.h" nogil:
    ctypedef struct fastce_options:
        int reduction
        int n_threads
        int64_t ignore_index
        double label_smoothing
        double gamma
        double alpha
        const double *class_alpha
        const double *class_weight
        const double *pos_weight
        const double *weight
        int64_t weight_row_stride
        int64_t weight_col_stride

    fastce_options fastce_options_default()
    const char *fastce_status_name(int status)
    int fastce_version_number()
    void fastce_set_num_threads(int n)
    int fastce_get_num_threads()

    int fastce_log_softmax_f32(const float *x, int64_t n, int64_t c, int64_t rs, float *out, int64_t ors, const fastce_options *o)
    int fastce_log_softmax_f64(const double *x, int64_t n, int64_t c, int64_t rs, double *out, int64_t ors, const fastce_options *o)
    int fastce_softmax_f32(const float *x, int64_t n, int64_t c, int64_t rs, float *out, int64_t ors, const fastce_options *o)
    int fastce_softmax_f64(const double *x, int64_t n, int64_t c, int64_t rs, double *out, int64_t ors, const fastce_options *o)
    int fastce_logsumexp_f32(const float *x, int64_t n, int64_t c, int64_t rs, float *out, const fastce_options *o)
    int fastce_logsumexp_f64(const double *x, int64_t n, int64_t c, int64_t rs, double *out, const fastce_options *o)

    int fastce_cross_entropy_f32(const float *x, int64_t n, int64_t c, int64_t rs, const int64_t *y, const fastce_options *o, double *loss, float *grad, int64_t grs)
    int fastce_cross_entropy_f64(const double *x, int64_t n, int64_t c, int64_t rs, const int64_t *y, const fastce_options *o, double *loss, double *grad, int64_t grs)
    int fastce_focal_loss_f32(const float *x, int64_t n, int64_t c, int64_t rs, const int64_t *y, const fastce_options *o, double *loss, float *grad, int64_t grs)
    int fastce_focal_loss_f64(const double *x, int64_t n, int64_t c, int64_t rs, const int64_t *y, const fastce_options *o, double *loss, double *grad, int64_t grs)

    int fastce_cross_entropy_prob_f32(const float *x, int64_t n, int64_t c, int64_t rs, const float *t, int64_t trs, const fastce_options *o, double *loss, float *grad, int64_t grs)
    int fastce_cross_entropy_prob_f64(const double *x, int64_t n, int64_t c, int64_t rs, const double *t, int64_t trs, const fastce_options *o, double *loss, double *grad, int64_t grs)
    int fastce_focal_loss_prob_f32(const float *x, int64_t n, int64_t c, int64_t rs, const float *t, int64_t trs, const fastce_options *o, double *loss, float *grad, int64_t grs)
    int fastce_focal_loss_prob_f64(const double *x, int64_t n, int64_t c, int64_t rs, const double *t, int64_t trs, const fastce_options *o, double *loss, double *grad, int64_t grs)
    int fastce_binary_cross_entropy_f32(const float *x, int64_t n, int64_t c, int64_t rs, const float *t, int64_t trs, const fastce_options *o, double *loss, float *grad, int64_t grs)
    int fastce_binary_cross_entropy_f64(const double *x, int64_t n, int64_t c, int64_t rs, const double *t, int64_t trs, const fastce_options *o, double *loss, double *grad, int64_t grs)
    int fastce_sigmoid_focal_loss_f32(const float *x, int64_t n, int64_t c, int64_t rs, const float *t, int64_t trs, const fastce_options *o, double *loss, float *grad, int64_t grs)
    int fastce_sigmoid_focal_loss_f64(const double *x, int64_t n, int64_t c, int64_t rs, const double *t, int64_t trs, const fastce_options *o, double *loss, double *grad, int64_t grs)
