# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of the C core (include/fastce.h) for the ``cython`` backend.

No math here: arrays arrive validated and normalised by ``fastce._validate``
(2-D, class axis contiguous, float32/float64, int64 targets, float64 weights);
this layer takes their data pointers, releases the GIL and calls the C function of
the dtype. A non-zero C status (never expected after validation) raises.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t

from fastce._cython.fastce_h cimport *

cnp.import_array()


cdef inline int _reduction(str r) except -1:
    if r == "mean":
        return 1
    if r == "none":
        return 0
    if r == "sum":
        return 2
    raise ValueError(f"unknown reduction {r!r}")


cdef inline void *_ptr(object a):
    """Data pointer of an ndarray, NULL for None (the arrays are validated upstream)."""
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline int64_t _stride(object a, int axis):
    """Stride of `axis` in elements (0 for None or a missing axis)."""
    if a is None or cnp.PyArray_NDIM(<cnp.ndarray>a) <= axis:
        return 0
    return cnp.PyArray_STRIDE(<cnp.ndarray>a, axis) // cnp.PyArray_ITEMSIZE(<cnp.ndarray>a)


cdef inline int64_t _dim(object a, int axis):
    return cnp.PyArray_DIM(<cnp.ndarray>a, axis)


cdef inline bint _is_f32(object a):
    return cnp.PyArray_ITEMSIZE(<cnp.ndarray>a) == 4


cdef inline void _check(int status) except *:
    """Raise for a non-zero status: IndexError for a target out of range (the
    API leaves that check to the core and then names the target), ValueError
    otherwise (never expected after validation), MemoryError for _ALLOC."""
    if status == 0:
        return
    msg = f"fastce C core returned {fastce_status_name(status).decode()}"
    if status == 3:
        raise IndexError(msg)
    if status == 5:
        raise MemoryError(msg)
    raise ValueError(msg)


def version_number():
    return fastce_version_number()


def set_num_threads(int n):
    fastce_set_num_threads(n)


def get_num_threads():
    return fastce_get_num_threads()


cdef int _softmax_family(int which, x, out, int n_threads) except -1:
    cdef fastce_options o = fastce_options_default()
    o.n_threads = n_threads
    cdef int64_t n = _dim(x, 0), c = _dim(x, 1), rs = _stride(x, 0), ors = _stride(out, 0)
    cdef bint f32 = _is_f32(x)
    cdef void *px = _ptr(x)
    cdef void *po = _ptr(out)
    cdef int st
    with nogil:
        if which == 0:
            st = (fastce_log_softmax_f32(<float *>px, n, c, rs, <float *>po, ors, &o) if f32 else
                  fastce_log_softmax_f64(<double *>px, n, c, rs, <double *>po, ors, &o))
        elif which == 1:
            st = (fastce_softmax_f32(<float *>px, n, c, rs, <float *>po, ors, &o) if f32 else
                  fastce_softmax_f64(<double *>px, n, c, rs, <double *>po, ors, &o))
        else:
            st = (fastce_logsumexp_f32(<float *>px, n, c, rs, <float *>po, &o) if f32 else
                  fastce_logsumexp_f64(<double *>px, n, c, rs, <double *>po, &o))
    _check(st)
    return 0


def log_softmax(cnp.ndarray x not None, cnp.ndarray out not None, int n_threads):
    _softmax_family(0, x, out, n_threads)


def softmax(cnp.ndarray x not None, cnp.ndarray out not None, int n_threads):
    _softmax_family(1, x, out, n_threads)


def logsumexp(cnp.ndarray x not None, cnp.ndarray out not None, int n_threads):
    _softmax_family(2, x, out, n_threads)


cdef int _index_loss(int which, x, y, fastce_options *o, loss, grad) except -1:
    """which: 0 cross_entropy, 1 focal_loss (class-index targets)."""
    cdef int64_t n = _dim(x, 0), c = _dim(x, 1), rs = _stride(x, 0), grs = _stride(grad, 0)
    cdef const int64_t *py = <const int64_t *>_ptr(y)
    cdef double *pl = <double *>_ptr(loss)
    cdef void *px = _ptr(x)
    cdef void *pg = _ptr(grad)
    cdef bint f32 = _is_f32(x)
    cdef int st
    with nogil:
        if which == 0:
            st = (fastce_cross_entropy_f32(<float *>px, n, c, rs, py, o, pl, <float *>pg, grs) if f32 else
                  fastce_cross_entropy_f64(<double *>px, n, c, rs, py, o, pl, <double *>pg, grs))
        else:
            st = (fastce_focal_loss_f32(<float *>px, n, c, rs, py, o, pl, <float *>pg, grs) if f32 else
                  fastce_focal_loss_f64(<double *>px, n, c, rs, py, o, pl, <double *>pg, grs))
    _check(st)
    return 0


cdef int _dense_loss(int which, x, t, fastce_options *o, loss, grad) except -1:
    """which: 0 cross_entropy_prob, 1 focal_loss_prob, 2 binary_cross_entropy, 3 sigmoid_focal_loss."""
    cdef int64_t n = _dim(x, 0), c = _dim(x, 1), rs = _stride(x, 0), trs = _stride(t, 0), grs = _stride(grad, 0)
    cdef double *pl = <double *>_ptr(loss)
    cdef void *px = _ptr(x)
    cdef void *pt = _ptr(t)
    cdef void *pg = _ptr(grad)
    cdef bint f32 = _is_f32(x)
    cdef int st
    with nogil:
        if f32:
            if which == 0:
                st = fastce_cross_entropy_prob_f32(<float *>px, n, c, rs, <float *>pt, trs, o, pl, <float *>pg, grs)
            elif which == 1:
                st = fastce_focal_loss_prob_f32(<float *>px, n, c, rs, <float *>pt, trs, o, pl, <float *>pg, grs)
            elif which == 2:
                st = fastce_binary_cross_entropy_f32(<float *>px, n, c, rs, <float *>pt, trs, o, pl, <float *>pg, grs)
            else:
                st = fastce_sigmoid_focal_loss_f32(<float *>px, n, c, rs, <float *>pt, trs, o, pl, <float *>pg, grs)
        else:
            if which == 0:
                st = fastce_cross_entropy_prob_f64(<double *>px, n, c, rs, <double *>pt, trs, o, pl, <double *>pg, grs)
            elif which == 1:
                st = fastce_focal_loss_prob_f64(<double *>px, n, c, rs, <double *>pt, trs, o, pl, <double *>pg, grs)
            elif which == 2:
                st = fastce_binary_cross_entropy_f64(<double *>px, n, c, rs, <double *>pt, trs, o, pl, <double *>pg, grs)
            else:
                st = fastce_sigmoid_focal_loss_f64(<double *>px, n, c, rs, <double *>pt, trs, o, pl, <double *>pg, grs)
    _check(st)
    return 0


def cross_entropy(cnp.ndarray x not None, cnp.ndarray y not None, cnp.ndarray weight,
                  int64_t ignore_index, double label_smoothing, str reduction,
                  cnp.ndarray loss not None, cnp.ndarray grad, int n_threads):
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.ignore_index = ignore_index
    o.label_smoothing = label_smoothing
    o.class_weight = <const double *>_ptr(weight)
    _index_loss(0, x, y, &o, loss, grad)


def cross_entropy_prob(cnp.ndarray x not None, cnp.ndarray t not None, cnp.ndarray weight,
                       double label_smoothing, str reduction, cnp.ndarray loss not None,
                       cnp.ndarray grad, int n_threads):
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.label_smoothing = label_smoothing
    o.class_weight = <const double *>_ptr(weight)
    _dense_loss(0, x, t, &o, loss, grad)


def focal_loss(cnp.ndarray x not None, cnp.ndarray y not None, double gamma, double alpha,
               cnp.ndarray class_alpha, int64_t ignore_index, str reduction,
               cnp.ndarray loss not None, cnp.ndarray grad, int n_threads):
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.ignore_index = ignore_index
    o.gamma = gamma
    o.alpha = alpha
    o.class_alpha = <const double *>_ptr(class_alpha)
    _index_loss(1, x, y, &o, loss, grad)


def focal_loss_prob(cnp.ndarray x not None, cnp.ndarray t not None, double gamma, double alpha,
                    cnp.ndarray class_alpha, str reduction, cnp.ndarray loss not None,
                    cnp.ndarray grad, int n_threads):
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.gamma = gamma
    o.alpha = alpha
    o.class_alpha = <const double *>_ptr(class_alpha)
    _dense_loss(1, x, t, &o, loss, grad)


def binary_cross_entropy(cnp.ndarray x not None, cnp.ndarray t not None, cnp.ndarray weight,
                         cnp.ndarray pos_weight, str reduction, cnp.ndarray loss not None,
                         cnp.ndarray grad, int n_threads):
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.weight = <const double *>_ptr(weight)
    o.weight_row_stride = _stride(weight, 0)
    o.weight_col_stride = _stride(weight, 1)
    o.pos_weight = <const double *>_ptr(pos_weight)
    _dense_loss(2, x, t, &o, loss, grad)


def sigmoid_focal_loss(cnp.ndarray x not None, cnp.ndarray t not None, double gamma, double alpha,
                       str reduction, cnp.ndarray loss not None, cnp.ndarray grad, int n_threads):
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.gamma = gamma
    o.alpha = alpha
    _dense_loss(3, x, t, &o, loss, grad)
