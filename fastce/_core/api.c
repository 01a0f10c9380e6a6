/*
 * api.c -- the dtype-independent part of the C API: version, status names,
 * options, thread control, argument validation and the ordered sum.
 */
#include "internal.h"

int fastce_version_number(void) { return FASTCE_VERSION_NUMBER; }

const char *fastce_status_name(int status) {
    switch (status) {
    case FASTCE_OK: return "FASTCE_OK";
    case FASTCE_ERR_NULL_POINTER: return "FASTCE_ERR_NULL_POINTER";
    case FASTCE_ERR_BAD_SIZE: return "FASTCE_ERR_BAD_SIZE";
    case FASTCE_ERR_TARGET_OUT_OF_RANGE: return "FASTCE_ERR_TARGET_OUT_OF_RANGE";
    case FASTCE_ERR_BAD_ARGUMENT: return "FASTCE_ERR_BAD_ARGUMENT";
    case FASTCE_ERR_ALLOC: return "FASTCE_ERR_ALLOC";
    default: return "FASTCE_UNKNOWN_STATUS";
    }
}

fastce_options fastce_options_default(void) {
    fastce_options o = FASTCE_OPTIONS_INIT;
    return o;
}

/* 0 = follow OpenMP's default (omp_get_max_threads(), which threadpoolctl and
 * OMP_NUM_THREADS control). Written rarely, read by every call. */
static volatile int fc_default_threads = 0;

void fastce_set_num_threads(int n_threads) { fc_default_threads = n_threads > 0 ? n_threads : 0; }

/* GNU OpenMP's thread pool does not survive fork(): a forked child that
 * starts a parallel region hangs. The child therefore runs single-threaded
 * (a team of one never touches the inherited pool). */
static volatile int fc_forked_child = 0;
#if defined(__unix__) && defined(_OPENMP)
#include <pthread.h>
static void fc_atfork_child(void) { fc_forked_child = 1; }
__attribute__((constructor)) static void fc_register_atfork(void) {
    pthread_atfork(NULL, NULL, fc_atfork_child);
}
#endif

static int fc_omp_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int fastce_get_num_threads(void) {
    int d = fc_default_threads;
    int cap = fc_omp_max_threads();
    return d > 0 && d < cap ? d : cap;
}

int fc_threads_for(const fastce_options *o, int64_t n_rows, int64_t n_classes, int64_t n_blocks) {
    int nt = o->n_threads > 0 ? o->n_threads : fastce_get_num_threads();
    if (fc_forked_child || n_rows * n_classes < FC_PAR_MIN_ELEMS) return 1;
    if ((int64_t)nt > n_blocks) nt = (int)n_blocks;
    return nt > 0 ? nt : 1;
}

double fc_sum_ordered(const double *partial, int64_t n) {
    double s = 0.0;
    for (int64_t b = 0; b < n; b++) s += partial[b];
    return s;
}

int fc_resolve_options(const fastce_options *opt, fastce_options *o) {
    *o = opt ? *opt : fastce_options_default();
    if (o->reduction != FASTCE_REDUCTION_NONE && o->reduction != FASTCE_REDUCTION_MEAN &&
        o->reduction != FASTCE_REDUCTION_SUM)
        return FASTCE_ERR_BAD_ARGUMENT;
    if (o->n_threads < 0) return FASTCE_ERR_BAD_ARGUMENT;
    /* written as negations so that NaN fails them */
    if (!(o->label_smoothing >= 0.0 && o->label_smoothing <= 1.0)) return FASTCE_ERR_BAD_ARGUMENT;
    if (!(o->gamma >= 0.0 && o->gamma < INFINITY)) return FASTCE_ERR_BAD_ARGUMENT;
    if (!(o->alpha > -INFINITY && o->alpha < INFINITY)) return FASTCE_ERR_BAD_ARGUMENT;
    return FASTCE_OK;
}

int fc_check_strided(const void *p, int64_t n_rows, int64_t n_classes, int64_t row_stride,
                     int64_t col_stride, size_t elem_size) {
    if (n_rows < 0 || n_classes < 0 || row_stride < 0 || col_stride < 0) return FASTCE_ERR_BAD_SIZE;
    if (n_rows == 0 || n_classes == 0) return FASTCE_OK;
    if (!p) return FASTCE_ERR_NULL_POINTER;
    /* The element count must be an int64 (broadcast inputs may exceed the
       address space), and every byte offset a valid ptrdiff_t: the last
       element's offset (n_rows - 1) row_stride + (n_classes - 1) col_stride
       stays below PTRDIFF_MAX / elem_size (for an output, whose rows do not
       overlap, that bounds its size too). */
    const int64_t limit = (int64_t)(PTRDIFF_MAX / elem_size);
    if (n_rows > INT64_MAX / n_classes) return FASTCE_ERR_BAD_SIZE;
    if (n_rows > 1 && row_stride > limit / (n_rows - 1)) return FASTCE_ERR_BAD_SIZE;
    int64_t extent = (n_rows - 1) * row_stride;
    if (n_classes > 1 && col_stride > (limit - extent) / (n_classes - 1)) return FASTCE_ERR_BAD_SIZE;
    extent += (n_classes - 1) * col_stride;
    if (extent >= limit) return FASTCE_ERR_BAD_SIZE;
    return FASTCE_OK;
}

int fc_check_matrix(const void *p, int64_t n_rows, int64_t n_classes, int64_t row_stride,
                    size_t elem_size, int writable) {
    int st = fc_check_strided(p, n_rows, n_classes, row_stride, 1, elem_size);
    if (st) return st;
    if (writable && n_rows > 1 && n_classes > 0 && row_stride < n_classes) return FASTCE_ERR_BAD_SIZE;
    return FASTCE_OK;
}

int fc_check_finite(const double *v, int64_t n) {
    if (!v) return FASTCE_OK;
    for (int64_t k = 0; k < n; k++)
        if (!(v[k] > -INFINITY && v[k] < INFINITY)) return FASTCE_ERR_BAD_ARGUMENT;
    return FASTCE_OK;
}

