# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of the C core (include/fastce.h) for the ``cython`` backend.

No math here: arrays arrive validated and normalised by ``fastce._validate``
(2-D, class axis contiguous, float32/float64, int64 targets, float64 weights);
this layer takes their buffers, releases the GIL and calls the C function of
the dtype. A non-zero C status (never expected after validation) raises.
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_RECORDS, PyBUF_RECORDS_RO
from libc.stdint cimport int64_t

from fastce._cython.fastce_h cimport *


cdef inline int _reduction(str r) except -1:
    if r == "mean":
        return 1
    if r == "none":
        return 0
    if r == "sum":
        return 2
    raise ValueError(f"unknown reduction {r!r}")


cdef class _View:
    """A held buffer of a (possibly absent) array."""
    cdef Py_buffer buf
    cdef bint held

    def __cinit__(self, obj, bint writable=False):
        self.held = False
        if obj is not None:
            PyObject_GetBuffer(obj, &self.buf, PyBUF_RECORDS if writable else PyBUF_RECORDS_RO)
            self.held = True

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.buf)

    cdef void *ptr(self) noexcept nogil:
        return self.buf.buf if self.held else NULL

    cdef int64_t stride(self, int axis) noexcept nogil:
        """Stride of `axis` in elements (0 when absent or 1-D)."""
        if not self.held or self.buf.ndim <= axis:
            return 0
        return self.buf.strides[axis] // self.buf.itemsize


cdef inline int64_t _rows(_View v):
    return v.buf.shape[0]


cdef inline int64_t _cols(_View v):
    return v.buf.shape[1]


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
    cdef _View vx = _View(x), vo = _View(out, True)
    cdef fastce_options o = fastce_options_default()
    o.n_threads = n_threads
    cdef int64_t n = _rows(vx), c = _cols(vx), rs = vx.stride(0), ors = vo.stride(0)
    cdef bint f32 = vx.buf.itemsize == 4
    cdef int st
    with nogil:
        if which == 0:
            st = (fastce_log_softmax_f32(<float *>vx.ptr(), n, c, rs, <float *>vo.ptr(), ors, &o) if f32 else
                  fastce_log_softmax_f64(<double *>vx.ptr(), n, c, rs, <double *>vo.ptr(), ors, &o))
        elif which == 1:
            st = (fastce_softmax_f32(<float *>vx.ptr(), n, c, rs, <float *>vo.ptr(), ors, &o) if f32 else
                  fastce_softmax_f64(<double *>vx.ptr(), n, c, rs, <double *>vo.ptr(), ors, &o))
        else:
            st = (fastce_logsumexp_f32(<float *>vx.ptr(), n, c, rs, <float *>vo.ptr(), &o) if f32 else
                  fastce_logsumexp_f64(<double *>vx.ptr(), n, c, rs, <double *>vo.ptr(), &o))
    _check(st)
    return 0


def log_softmax(x, out, int n_threads):
    _softmax_family(0, x, out, n_threads)


def softmax(x, out, int n_threads):
    _softmax_family(1, x, out, n_threads)


def logsumexp(x, out, int n_threads):
    _softmax_family(2, x, out, n_threads)


cdef int _index_loss(int which, x, y, fastce_options *o, loss, grad) except -1:
    """which: 0 cross_entropy, 1 focal_loss (class-index targets)."""
    cdef _View vx = _View(x), vy = _View(y), vl = _View(loss, True), vg = _View(grad, True)
    cdef int64_t n = _rows(vx), c = _cols(vx), rs = vx.stride(0), grs = vg.stride(0)
    cdef const int64_t *py = <const int64_t *>vy.ptr()
    cdef double *pl = <double *>vl.ptr()
    cdef bint f32 = vx.buf.itemsize == 4
    cdef int st
    with nogil:
        if which == 0:
            st = (fastce_cross_entropy_f32(<float *>vx.ptr(), n, c, rs, py, o, pl, <float *>vg.ptr(), grs) if f32 else
                  fastce_cross_entropy_f64(<double *>vx.ptr(), n, c, rs, py, o, pl, <double *>vg.ptr(), grs))
        else:
            st = (fastce_focal_loss_f32(<float *>vx.ptr(), n, c, rs, py, o, pl, <float *>vg.ptr(), grs) if f32 else
                  fastce_focal_loss_f64(<double *>vx.ptr(), n, c, rs, py, o, pl, <double *>vg.ptr(), grs))
    _check(st)
    return 0


cdef int _dense_loss(int which, x, t, fastce_options *o, loss, grad) except -1:
    """which: 0 cross_entropy_prob, 1 focal_loss_prob, 2 binary_cross_entropy, 3 sigmoid_focal_loss."""
    cdef _View vx = _View(x), vt = _View(t), vl = _View(loss, True), vg = _View(grad, True)
    cdef int64_t n = _rows(vx), c = _cols(vx), rs = vx.stride(0), trs = vt.stride(0), grs = vg.stride(0)
    cdef double *pl = <double *>vl.ptr()
    cdef bint f32 = vx.buf.itemsize == 4
    cdef int st
    with nogil:
        if f32:
            if which == 0:
                st = fastce_cross_entropy_prob_f32(<float *>vx.ptr(), n, c, rs, <float *>vt.ptr(), trs, o, pl, <float *>vg.ptr(), grs)
            elif which == 1:
                st = fastce_focal_loss_prob_f32(<float *>vx.ptr(), n, c, rs, <float *>vt.ptr(), trs, o, pl, <float *>vg.ptr(), grs)
            elif which == 2:
                st = fastce_binary_cross_entropy_f32(<float *>vx.ptr(), n, c, rs, <float *>vt.ptr(), trs, o, pl, <float *>vg.ptr(), grs)
            else:
                st = fastce_sigmoid_focal_loss_f32(<float *>vx.ptr(), n, c, rs, <float *>vt.ptr(), trs, o, pl, <float *>vg.ptr(), grs)
        else:
            if which == 0:
                st = fastce_cross_entropy_prob_f64(<double *>vx.ptr(), n, c, rs, <double *>vt.ptr(), trs, o, pl, <double *>vg.ptr(), grs)
            elif which == 1:
                st = fastce_focal_loss_prob_f64(<double *>vx.ptr(), n, c, rs, <double *>vt.ptr(), trs, o, pl, <double *>vg.ptr(), grs)
            elif which == 2:
                st = fastce_binary_cross_entropy_f64(<double *>vx.ptr(), n, c, rs, <double *>vt.ptr(), trs, o, pl, <double *>vg.ptr(), grs)
            else:
                st = fastce_sigmoid_focal_loss_f64(<double *>vx.ptr(), n, c, rs, <double *>vt.ptr(), trs, o, pl, <double *>vg.ptr(), grs)
    _check(st)
    return 0


def cross_entropy(x, y, weight, int64_t ignore_index, double label_smoothing, str reduction,
                  loss, grad, int n_threads):
    cdef _View vw = _View(weight)
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.ignore_index = ignore_index
    o.label_smoothing = label_smoothing
    o.class_weight = <const double *>vw.ptr()
    _index_loss(0, x, y, &o, loss, grad)


def cross_entropy_prob(x, t, weight, double label_smoothing, str reduction, loss, grad, int n_threads):
    cdef _View vw = _View(weight)
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.label_smoothing = label_smoothing
    o.class_weight = <const double *>vw.ptr()
    _dense_loss(0, x, t, &o, loss, grad)


def focal_loss(x, y, double gamma, double alpha, class_alpha, int64_t ignore_index, str reduction,
               loss, grad, int n_threads):
    cdef _View va = _View(class_alpha)
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.ignore_index = ignore_index
    o.gamma = gamma
    o.alpha = alpha
    o.class_alpha = <const double *>va.ptr()
    _index_loss(1, x, y, &o, loss, grad)


def focal_loss_prob(x, t, double gamma, double alpha, class_alpha, str reduction, loss, grad,
                    int n_threads):
    cdef _View va = _View(class_alpha)
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.gamma = gamma
    o.alpha = alpha
    o.class_alpha = <const double *>va.ptr()
    _dense_loss(1, x, t, &o, loss, grad)


def binary_cross_entropy(x, t, weight, pos_weight, str reduction, loss, grad, int n_threads):
    cdef _View vw = _View(weight), vp = _View(pos_weight)
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.weight = <const double *>vw.ptr()
    o.weight_row_stride = vw.stride(0)
    o.weight_col_stride = vw.stride(1)
    o.pos_weight = <const double *>vp.ptr()
    _dense_loss(2, x, t, &o, loss, grad)


def sigmoid_focal_loss(x, t, double gamma, double alpha, str reduction, loss, grad, int n_threads):
    cdef fastce_options o = fastce_options_default()
    o.reduction = _reduction(reduction)
    o.n_threads = n_threads
    o.gamma = gamma
    o.alpha = alpha
    _dense_loss(3, x, t, &o, loss, grad)
