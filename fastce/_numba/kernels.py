"""Numba kernels of the ``numba`` backend: a line-by-line mirror of the C core.

Design note (read this first)
-----------------------------
- The math, conventions and algorithms are those of ``include/fastce.h`` and
  ``fastce/_core/*_t.h``: per row the max (NaN skipped), a float64 sum of
  ``exp(x - m)`` (storing the exponentials into the gradient row when one is
  wanted, so exp runs once per element), log-sum-exp forms, ``expm1`` where
  ``p_t -> 1``, ``r = lp / q`` for the focal gradient, 0 log 0 := 0, and the
  elementwise sigmoid forms built on ``exp(-|x|)``. Arithmetic the C core does
  in the input dtype T is done in T here too (constants are cast with ``_as``),
  float64 where it uses double.
- Reductions are deterministic: rows are cut into blocks of
  ``_block_rows(C)`` = max(1, 16384 // C) rows (the core's ``fc_block_rows``);
  a block is handled by one thread, its rows in order, and writes its float64
  partial sum to ``partial[b]``; the partials are then added serially in
  block order. The block size depends on C only, so results are bit-identical
  for any thread count (and there is no racy accumulator).
- Each ``_kernel`` takes ``par``: True runs the blocks in a ``prange`` (the
  caller has set Numba's thread count), False in a plain loop, so small inputs
  pay no parallel start-up (with the ``workqueue`` layer that is ~90 us).
  Kernels allocate nothing but the partials and call no NumPy array
  functions: with ``parallel=True`` those would become parallel regions too.
- Arrays arrive flattened (see ``fastce._numba.__init__``): every matrix is a
  1-D C-contiguous view of its buffer with its row stride in elements (0
  broadcasts a row), so the class loops are unit-stride and vectorise, and one
  compiled specialisation serves every layout. Absent options are dummy
  arrays plus a ``has_*`` flag.
- Numba 0.68 from PyPI has no SVML, so ``np.exp`` in a loop stays a scalar
  libm call (~3.5 ns/element). ``fexp`` is written as plain arithmetic that
  LLVM vectorises (~0.4 ns/element float32): Cody-Waite reduction, a
  polynomial, and 2^k assembled from exponent bits; ``flog1p_unit`` likewise
  for the sigmoid forms' log1p(exp(-|x|)) (``math.log1p`` costs ~15-20 ns).
  The row max is taken over integer keys (a float max reduction does not
  vectorise without ``nnan``). The per-row scalar functions (one log per row,
  the focal terms) use libm through ``math``, as the C core does.
- Elementwise bodies (BCE, sigmoid focal) are too big for LLVM's inliner, and a
  call per element is ~20x slower: they are inlined by Numba (``_inline``)
  into strict row loops that store every element (scratch rows for unwanted
  outputs); the row sum is a separate reduction over the stored losses.
- Fast-math: ``FASTMATH`` (with ``reassoc``) only on the reduction loops,
  ``FASTMATH_STRICT`` everywhere else; see ``fastmath.py`` for why.
"""
from __future__ import annotations

import math

import numpy as np
from numba import config, njit, prange, types
from numba.extending import intrinsic, overload

from fastce._numba.fastmath import FASTMATH, FASTMATH_STRICT

NONE, MEAN, SUM = 0, 1, 2
BLOCK_ELEMS = 1 << 14  # the core's FC_BLOCK_ELEMS

_strict = njit(cache=True, error_model="numpy", fastmath=FASTMATH_STRICT)
_reduce = njit(cache=True, error_model="numpy", fastmath=FASTMATH)
# elementwise bodies too big for LLVM's inliner: inlined by Numba into the (strict) caller,
# whose flags then apply (never use it from a _reduce function)
_inline = njit(inline="always", cache=True, error_model="numpy", fastmath=FASTMATH_STRICT)
# error_model="numpy": x / 0 gives inf/NaN as in C (Numba's default raises)
_kernel = njit(parallel=True, cache=True, error_model="numpy", fastmath=FASTMATH_STRICT)


# --- bit casts and dtype casts ---------------------------------------------------------
if config.DISABLE_JIT:  # pure-Python stand-ins (intrinsics need the compiler)

    def _f32_from_bits(i):
        return np.int32(i).view(np.float32)

    def _f64_from_bits(i):
        return np.int64(i).view(np.float64)

    def _f32_bits(v):
        return np.float32(v).view(np.int32)

    def _f64_bits(v):
        return np.float64(v).view(np.int64)

else:

    @intrinsic
    def _f32_from_bits(typingctx, i):
        """float32 whose bit pattern is the low 32 bits of integer `i`."""
        if not isinstance(i, types.Integer):
            return None

        def codegen(context, builder, sig, args):
            v = args[0]
            if i.bitwidth > 32:
                v = builder.trunc(v, context.get_value_type(types.int32))
            elif i.bitwidth < 32:
                v = builder.sext(v, context.get_value_type(types.int32))
            return builder.bitcast(v, context.get_value_type(types.float32))

        return types.float32(i), codegen

    @intrinsic
    def _f64_from_bits(typingctx, i):
        """float64 whose bit pattern is integer `i` (sign-extended to 64 bits)."""
        if not isinstance(i, types.Integer):
            return None

        def codegen(context, builder, sig, args):
            v = args[0]
            if i.bitwidth < 64:
                v = builder.sext(v, context.get_value_type(types.int64))
            return builder.bitcast(v, context.get_value_type(types.float64))

        return types.float64(i), codegen

    @intrinsic
    def _f32_bits(typingctx, v):
        """The bit pattern of float32 `v` as an int32."""
        if v != types.float32:
            return None

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(types.int32))

        return types.int32(v), codegen

    @intrinsic
    def _f64_bits(typingctx, v):
        """The bit pattern of float64 `v` as an int64."""
        if v != types.float64:
            return None

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(types.int64))

        return types.int64(v), codegen


def _as(v, like):
    """`v` converted to the float type of `like` (float32 or float64)."""
    return type(like)(v)


@overload(_as)
def _as_ov(v, like):
    if like == types.float32:
        return lambda v, like: np.float32(v)
    if like == types.float64:
        return lambda v, like: np.float64(v)
    return None


# --- vectorisable exp ------------------------------------------------------------------
# exp(x) = 2^k exp(r), k = round(x / ln2), r = x - k ln2 computed Cody-Waite style
# (ln2 = C1 + C2, C1 with few bits so k * C1 is exact), |r| <= ln2 / 2; exp(r) from a
# polynomial; 2^k built in two halves (2^(k>>1) * 2^(k - (k>>1)), each a normal
# number) so that results in the subnormal range and overflow to inf come out right
# with one rounding. x is first clamped to [LO, HI] (-inf -> LO, +inf -> HI) with
# min/max (single vminps/vmaxps). k is rounded with the shifter trick: t = x/ln2 + S,
# S = 1.5 * 2^(mantissa bits), so t's low mantissa bits hold k (no float -> int
# conversion, which LLVM would make poison for NaN; this needs the no-reassoc
# flags, else (t - S) folds away). A NaN input gives garbage k, a NaN y, and is
# returned as is at the end.
# Special values: exp(+inf) = inf, exp(-inf) = 0, exp(NaN) = NaN, overflow -> inf,
# underflow -> 0 (subnormals are produced, rounded once).
# Accuracy (measured, tests/test_numba_backend.py::test_exp_accuracy*):
#   float32: max 1.01 ulp over 8M points evenly spread on [-104.5, 89.5], subnormal
#            results included (vs float64 exp rounded: the float32 ulp of the result);
#   float64: max 0.94 ulp vs mpmath (28k random arguments, incl. the subnormal range).
# (glibc's scalar expf/exp: < 1 ulp; libmvec, used by the C core: < 4 ulp documented.)

_E32_LOG2E = np.float32(1.4426950408889634)
_E32_C1 = np.float32(0.693359375)  # Cephes expf: ln2 = C1 + C2
_E32_C2 = np.float32(-2.12194440e-4)
# minimax coefficients of (exp(r) - 1 - r) / r^2 on [-ln2/2, ln2/2] (Cephes expf)
_E32_P0 = np.float32(1.9875691500e-4)
_E32_P1 = np.float32(1.3981999507e-3)
_E32_P2 = np.float32(8.3334519073e-3)
_E32_P3 = np.float32(4.1665795894e-2)
_E32_P4 = np.float32(1.6666665459e-1)
_E32_P5 = np.float32(5.0000001201e-1)
_E32_HI = np.float32(89.0)  # exp(89) > FLT_MAX: overflows to inf
_E32_LO = np.float32(-104.0)  # exp(-104) < FLT_TRUE_MIN / 2: rounds to 0
_E32_SHIFT = np.float32(12582912.0)  # 1.5 * 2^23
_E32_SHIFT_BITS = int(np.float32(12582912.0).view(np.int32))
_E32_ONE = np.float32(1.0)


@_strict
def _exp_f32(x):
    xc = min(max(x, _E32_LO), _E32_HI)
    t = xc * _E32_LOG2E + _E32_SHIFT
    kf = t - _E32_SHIFT
    r = (xc - kf * _E32_C1) - kf * _E32_C2
    p = ((((_E32_P0 * r + _E32_P1) * r + _E32_P2) * r + _E32_P3) * r + _E32_P4) * r + _E32_P5
    p = (p * (r * r) + r) + _E32_ONE
    k = _f32_bits(t) - np.int32(_E32_SHIFT_BITS)
    k1 = k >> 1
    k2 = k - k1
    y = p * _f32_from_bits((k1 + 127) << 23) * _f32_from_bits((k2 + 127) << 23)
    return y if x == x else x


_E64_LOG2E = 1.4426950408889634
_E64_C1 = 6.93145751953125e-1  # Cephes exp: ln2 = C1 + C2
_E64_C2 = 1.42860682030941723212e-6
# Taylor coefficients 1/n!, n = 2..13: truncation error < 5e-18 for |r| <= ln2/2
_E64_T = tuple(1.0 / math.factorial(n) for n in range(2, 14))
(_E64_T2, _E64_T3, _E64_T4, _E64_T5, _E64_T6, _E64_T7, _E64_T8, _E64_T9, _E64_T10,
 _E64_T11, _E64_T12, _E64_T13) = _E64_T
_E64_HI = 710.0  # exp(710) > DBL_MAX
_E64_LO = -746.0  # exp(-746) < DBL_TRUE_MIN / 2
_E64_SHIFT = 6755399441055744.0  # 1.5 * 2^52
_E64_SHIFT_BITS = int(np.float64(_E64_SHIFT).view(np.int64))


@_strict
def _exp_f64(x):
    xc = min(max(x, _E64_LO), _E64_HI)
    t = xc * _E64_LOG2E + _E64_SHIFT
    kf = t - _E64_SHIFT
    r = (xc - kf * _E64_C1) - kf * _E64_C2
    q = _E64_T13 * r + _E64_T12
    q = q * r + _E64_T11
    q = q * r + _E64_T10
    q = q * r + _E64_T9
    q = q * r + _E64_T8
    q = q * r + _E64_T7
    q = q * r + _E64_T6
    q = q * r + _E64_T5
    q = q * r + _E64_T4
    q = q * r + _E64_T3
    q = q * r + _E64_T2
    p = (q * (r * r) + r) + 1.0
    k = _f64_bits(t) - _E64_SHIFT_BITS
    k1 = k >> 1
    k2 = k - k1
    y = p * _f64_from_bits((k1 + 1023) << 52) * _f64_from_bits((k2 + 1023) << 52)
    return y if x == x else x


def _by_dtype(name, doc, impl32, impl64):
    """A scalar function of float32 or float64 that runs `impl32` or `impl64` by the
    argument's dtype: plain Python (NUMBA_DISABLE_JIT) and, through @overload, inside
    compiled kernels."""
    def f(x):
        return impl32(x) if isinstance(x, np.float32) else impl64(np.float64(x))

    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc

    @overload(f)
    def _f_ov(x):
        if x == types.float32:
            return lambda x: impl32(x)
        if x == types.float64:
            return lambda x: impl64(x)
        return None

    return f


fexp = _by_dtype("fexp", "exp(x) for a float32 or float64 scalar, in that precision "
                 "(vectorisable).", _exp_f32, _exp_f64)


# --- vectorisable log1p on [0, 1] (the sigmoid forms' log1p(exp(-|x|))) ---------------
# float64: u = 1 + e (in [1, 2]) with the rounding correction c = (e - (u - 1)) / u, so
# log1p(e) = log(u) + c; u = 2^k m with m in [sqrt(1/2), sqrt(2)] (k = 0 or 1) and
# log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, from its Taylor series
# (truncation < 1e-18 with s^23); k ln2 split hi/lo. float32: the core's series (below).
# NaN gives NaN; only 0 <= e <= 1 is used (and tested).
# Accuracy (measured, tests/test_numba_backend.py::test_log1p_accuracy*): float32 max 2.8
# ulp (2M-point sweep of [0, 1] plus tiny arguments), float64 1.0 ulp (vs mpmath).
# math.log1p in a Numba loop is a scalar libm call (~15-20 ns/element); this is ~0.3.
_L_SQRT2 = 1.4142135623730951
_L_LN2_HI = 6.93147180369123816490e-01  # fdlibm: ln2_hi has 11 trailing zero bits
_L_LN2_LO = 1.90821492927058770002e-10
_L32_ONE, _L32_TWO = np.float32(1.0), np.float32(2.0)
_A32_3, _A32_5, _A32_7, _A32_9, _A32_11, _A32_13 = (np.float32(1.0 / k)
                                                   for k in (3, 5, 7, 9, 11, 13))
_L64 = tuple(2.0 / (2 * k + 1) for k in range(1, 12))  # 2/3 .. 2/23
(_L64_1, _L64_2, _L64_3, _L64_4, _L64_5, _L64_6, _L64_7, _L64_8, _L64_9, _L64_10,
 _L64_11) = _L64


@_strict
def _log1p_unit_f32(e):
    # float32: the C core's series (fc_log1p_unit_f32): u = e / (2 + e) in [0, 1/3],
    # log1p(e) = 2 atanh(u) = 2u (1 + z/3 + ... + z^6/13), z = u^2 (max 2.8 ulp);
    # one division instead of two and no range split.
    u = e / (_L32_TWO + e)
    z = u * u
    p = _A32_13 * z + _A32_11
    p = p * z + _A32_9
    p = p * z + _A32_7
    p = p * z + _A32_5
    p = p * z + _A32_3
    p = p * z + _L32_ONE
    return _L32_TWO * u * p


@_strict
def _log1p_unit_f64(e):
    u = 1.0 + e
    c = (e - (u - 1.0)) / u
    big = u > _L_SQRT2
    m = u * 0.5 if big else u
    kf = 1.0 if big else 0.0
    f = m - 1.0
    sv = f / (2.0 + f)
    z = sv * sv
    q = _L64_11 * z + _L64_10
    q = q * z + _L64_9
    q = q * z + _L64_8
    q = q * z + _L64_7
    q = q * z + _L64_6
    q = q * z + _L64_5
    q = q * z + _L64_4
    q = q * z + _L64_3
    q = q * z + _L64_2
    q = q * z + _L64_1
    lm = f - sv * (f - z * q)
    return kf * _L_LN2_HI + (lm + (kf * _L_LN2_LO + c))


flog1p_unit = _by_dtype("flog1p_unit", "log1p(e) for 0 <= e <= 1 (or NaN), float32 or "
                        "float64, vectorisable.", _log1p_unit_f32, _log1p_unit_f64)


@_reduce
def _log1p_unit_array(x, out):
    """out[k] = flog1p_unit(x[k]) (accuracy tests)."""
    for k in range(x.shape[0]):
        out[k] = flog1p_unit(x[k])


@_reduce
def _exp_array(x, out):
    """out[k] = fexp(x[k]); compiled with the reduction flags (the widest licence any
    caller of fexp has), used by the accuracy tests."""
    for k in range(x.shape[0]):
        out[k] = fexp(x[k])


# --- blocks and reductions ------------------------------------------------------------
@_strict
def _block_rows(c):
    r = BLOCK_ELEMS // c if c > 0 else BLOCK_ELEMS
    return r if r > 0 else 1


@_strict
def _n_blocks(n, br):
    return (n + br - 1) // br


@_strict
def _grad_scale(red, denominator):
    """1 / denominator for MEAN (0 if it is 0: an empty mean has a zero gradient)."""
    if red != MEAN:
        return 1.0
    return 1.0 / denominator if denominator != 0.0 else 0.0


@_strict
def _finish(red, partial, nb, denominator, loss):
    """loss[0] = the block-ordered sum of the partials (/ denominator for MEAN)."""
    if red == NONE:
        return
    total = 0.0
    for b in range(nb):
        total += partial[b]
    # np.float64: IEEE 0/0 = NaN also when run as plain Python (NUMBA_DISABLE_JIT)
    loss[0] = np.float64(total) / denominator if red == MEAN else total


# --- row primitives (contiguous rows; float64 accumulation) --------------------------
def _fkey(v):
    """An integer key ordered like the float v (for v not NaN): the bits, with the
    magnitude bits flipped for negative v (two's-complement order = float order)."""
    if isinstance(v, np.float32):
        b = _f32_bits(v)
        return b ^ ((b >> 31) & 0x7FFFFFFF)
    b = _f64_bits(v)
    return b ^ ((b >> 63) & 0x7FFFFFFFFFFFFFFF)


def _fkey_inv(key, like):
    """The float of `like`'s type whose _fkey is `key` (the map is an involution)."""
    if isinstance(like, np.float32):
        return _f32_from_bits(np.int32(key ^ ((key >> 31) & 0x7FFFFFFF)))
    return _f64_from_bits(np.int64(key ^ ((key >> 63) & 0x7FFFFFFFFFFFFFFF)))


@overload(_fkey)
def _fkey_ov(v):
    if v == types.float32:
        def impl(v):
            b = _f32_bits(v)
            return b ^ ((b >> 31) & 0x7FFFFFFF)
        return impl
    if v == types.float64:
        def impl(v):
            b = _f64_bits(v)
            return b ^ ((b >> 63) & 0x7FFFFFFFFFFFFFFF)
        return impl
    return None


@overload(_fkey_inv)
def _fkey_inv_ov(key, like):
    if like == types.float32:
        return lambda key, like: _f32_from_bits(key ^ ((key >> 31) & 0x7FFFFFFF))
    if like == types.float64:
        return lambda key, like: _f64_from_bits(key ^ ((key >> 63) & 0x7FFFFFFFFFFFFFFF))
    return None


@_strict
def _row_max(x):
    """max_k x_k; -inf for an empty (or all-NaN) row; NaN is skipped (it propagates
    through the exps), as the core's row_max. LLVM does not vectorise a float max
    reduction without nnan, so the max is taken over integer keys (_fkey), which it
    does (vpmaxsd). The sign of a zero max may differ from the core's (harmless:
    x - (+0) == x - (-0))."""
    ninf = _as(-np.inf, x.dtype.type(0))
    k_ninf = _fkey(ninf)
    km = k_ninf
    for k in range(x.shape[0]):
        v = x[k]
        kv = _fkey(v) if v == v else k_ninf
        km = max(km, kv)
    return _fkey_inv(km, ninf)


@_reduce
def _row_sumexp(x, m):
    """sum_k exp(x_k - m) in float64 (exp in x's dtype)."""
    s = 0.0
    for k in range(x.shape[0]):
        s += np.float64(fexp(x[k] - m))
    return s


@_reduce
def _row_sumexp_store(x, m, e):
    """The same, storing e_k = exp(x_k - m)."""
    s = 0.0
    for k in range(x.shape[0]):
        v = fexp(x[k] - m)
        e[k] = v
        s += np.float64(v)
    return s


@_strict
def _row_scale(e, c):
    for k in range(e.shape[0]):
        e[k] *= c


@_strict
def _row_has_nan(x):
    for k in range(x.shape[0]):
        if x[k] != x[k]:
            return True
    return False


# log s to full relative accuracy where one class dominates: the max element(s)
# contribute exactly 1 each, so s - 1 = (number of maxima - 1) + (sum of the
# others) without the cancellation of (1 + tiny) - 1 (see the core's
# row_sumexp_m1; the same 2^-10 switch point).
_DOMINANT_M1 = 2.0 ** -10


@_strict
def _log_s(x, m, s):
    """log(s), s = sum_k exp(x_k - m) from the fast sum; NaN for an infinite m."""
    if m == np.inf or m == -np.inf:
        return np.nan
    if s - 1.0 >= _DOMINANT_M1:
        return math.log(s)
    rest = 0.0
    eq = 0.0
    for k in range(x.shape[0]):
        if x[k] == m:
            eq += 1.0
        else:
            rest += np.float64(fexp(x[k] - m))
    return math.log1p((eq - 1.0) + rest)


@_strict
def _row_lse(x, m, s):
    """log sum_k exp(x_k) from max m and shifted sum s; an all -inf row gives -inf,
    +inf without NaN gives +inf (no inf - inf)."""
    if m == np.inf or m == -np.inf:
        return np.nan if _row_has_nan(x) else np.float64(m)
    return np.float64(m) + _log_s(x, m, s)


@_reduce
def _row_wshift(x, m, w, has_w):
    """sum_c w_c (x_c - m); a zero weight contributes 0 even where x_c = -inf."""
    s = 0.0
    if has_w:
        for k in range(x.shape[0]):
            s += w[k] * (np.float64(x[k]) - np.float64(m)) if w[k] != 0.0 else 0.0
    else:
        for k in range(x.shape[0]):
            s += (np.float64(x[k]) - np.float64(m))
    return s


# --- softmax family -------------------------------------------------------------------
@_strict
def _softmax_rows(which, x, rs, c, out, lo, hi):
    """which: 0 log_softmax, 1 softmax, 2 logsumexp; rows [lo, hi)."""
    for i in range(lo, hi):
        xr = x[i * rs:i * rs + c]
        m = _row_max(xr)
        if which == 0:
            o = out[i * c:(i + 1) * c]
            ls = _as(_log_s(xr, m, _row_sumexp(xr, m)), m)
            for k in range(c):
                o[k] = (xr[k] - m) - ls
        elif which == 1:
            o = out[i * c:(i + 1) * c]
            s = _row_sumexp_store(xr, m, o)
            _row_scale(o, _as(1.0 / s, m))
        else:
            out[i] = _as(_row_lse(xr, m, _row_sumexp(xr, m)), m)


@_kernel
def _softmax_family(which, x, rs, n, c, out, par):
    br = _block_rows(c)
    nb = _n_blocks(n, br)
    if par:
        for b in prange(nb):
            _softmax_rows(which, x, rs, c, out, b * br, min(b * br + br, n))
    else:
        for b in range(nb):
            _softmax_rows(which, x, rs, c, out, b * br, min(b * br + br, n))


# --- cross-entropy, class-index targets --------------------------------------------
@_strict
def _ce_index_row(x, rs, c, yi, i, w, has_w, eps, wsum, scale, grad, has_g):
    xr = x[i * rs:i * rs + c]
    wy = w[yi] if has_w else 1.0
    m = _row_max(xr)
    if has_g:
        g = grad[i * c:(i + 1) * c]
        s = _row_sumexp_store(xr, m, g)
    else:
        s = _row_sumexp(xr, m)
    ls = _log_s(xr, m, s)
    logp_y = (np.float64(xr[yi]) - np.float64(m)) - ls
    l = (1.0 - eps) * wy * -logp_y
    if eps > 0.0:
        l += eps / c * (wsum * ls - _row_wshift(xr, m, w, has_w))
    if has_g:
        a = (1.0 - eps) * wy + eps / c * wsum
        cp = _as(scale * a / s, m)
        if eps > 0.0:
            e = scale * eps / c
            if has_w:
                for j in range(c):
                    g[j] = g[j] * cp - _as(e * w[j], m)
            else:
                et = _as(e, m)
                for j in range(c):
                    g[j] = g[j] * cp - et
        else:
            _row_scale(g, cp)
        # a p_y - (1 - eps) w_y - eps/C w_y = (1 - eps) w_y expm1(logp_y) + eps/C (W p_y - w_y)
        gy = (1.0 - eps) * wy * math.expm1(logp_y)
        if eps > 0.0:
            gy += eps / c * (wsum * math.exp(logp_y) - wy)
        g[yi] = _as(scale * gy, m)
    return l


@_strict
def _ce_index_block(x, rs, c, y, w, has_w, ignore_index, eps, wsum, scale, red, loss, grad,
                    has_g, lo, hi):
    acc = 0.0
    for i in range(lo, hi):
        yi = y[i]
        if yi == ignore_index:
            if has_g:
                grad[i * c:(i + 1) * c] = 0
            l = 0.0
        else:
            l = _ce_index_row(x, rs, c, yi, i, w, has_w, eps, wsum, scale, grad, has_g)
        if red == NONE:
            loss[i] = l
        else:
            acc += l
    return acc


@_kernel
def _cross_entropy(x, rs, n, c, y, w, has_w, ignore_index, eps, red, loss, grad, has_g, par):
    # MEAN denominator sum_{i not ignored} w[y_i], serially in row order (as the core)
    d = 0.0
    for i in range(n):
        if y[i] != ignore_index:
            d += w[y[i]] if has_w else 1.0
    scale = _grad_scale(red, d)
    wsum = 0.0
    if eps > 0.0:
        if has_w:
            for j in range(c):
                wsum += w[j]
        else:
            wsum = np.float64(c)
    br = _block_rows(c)
    nb = _n_blocks(n, br)
    partial = np.empty(nb)
    if par:
        for b in prange(nb):
            partial[b] = _ce_index_block(x, rs, c, y, w, has_w, ignore_index, eps, wsum, scale,
                                         red, loss, grad, has_g, b * br, min(b * br + br, n))
    else:
        for b in range(nb):
            partial[b] = _ce_index_block(x, rs, c, y, w, has_w, ignore_index, eps, wsum, scale,
                                         red, loss, grad, has_g, b * br, min(b * br + br, n))
    _finish(red, partial, nb, d, loss)


# --- cross-entropy, probability targets --------------------------------------------
@_reduce
def _ce_prob_sums(xr, tr, m, w, has_w, eps, u):
    """A = sum_c w_c t'_c, B = sum_{w t' != 0} w_c t'_c (x_c - m)."""
    A = 0.0
    B = 0.0
    for j in range(xr.shape[0]):
        a = (1.0 - eps) * np.float64(tr[j]) + u
        if has_w:
            a *= w[j]
        A += a
        B += a * (np.float64(xr[j]) - np.float64(m)) if a != 0.0 else 0.0
    return A, B


@_strict
def _ce_prob_block(x, rs, c, t, trs, w, has_w, eps, scale, red, loss, grad, has_g, lo, hi):
    u = eps / c
    acc = 0.0
    for i in range(lo, hi):
        xr = x[i * rs:i * rs + c]
        tr = t[i * trs:i * trs + c]
        m = _row_max(xr)
        if has_g:
            g = grad[i * c:(i + 1) * c]
            s = _row_sumexp_store(xr, m, g)
        else:
            s = _row_sumexp(xr, m)
        ls = _log_s(xr, m, s)
        A, B = _ce_prob_sums(xr, tr, m, w, has_w, eps, u)
        if has_g:
            cp = _as(scale * A / s, m)
            for j in range(c):
                a = (1.0 - eps) * np.float64(tr[j]) + u
                if has_w:
                    a *= w[j]
                g[j] = g[j] * cp - _as(scale * a, m)
        l = A * ls - B
        if red == NONE:
            loss[i] = l
        else:
            acc += l
    return acc


@_kernel
def _cross_entropy_prob(x, rs, n, c, t, trs, w, has_w, eps, red, loss, grad, has_g, par):
    scale = _grad_scale(red, np.float64(n))
    br = _block_rows(c)
    nb = _n_blocks(n, br)
    partial = np.empty(nb)
    if par:
        for b in prange(nb):
            partial[b] = _ce_prob_block(x, rs, c, t, trs, w, has_w, eps, scale, red, loss, grad,
                                        has_g, b * br, min(b * br + br, n))
    else:
        for b in range(nb):
            partial[b] = _ce_prob_block(x, rs, c, t, trs, w, has_w, eps, scale, red, loss, grad,
                                        has_g, b * br, min(b * br + br, n))
    _finish(red, partial, nb, np.float64(n), loss)


# --- softmax focal loss --------------------------------------------------------------
@_strict
def _pow_gamma(q, gamma):
    """q^gamma with the core's exact fast paths."""
    if gamma == 2.0:
        return q * q
    if gamma == 1.0:
        return q
    if gamma == 0.0:
        return 1.0
    if gamma == 3.0:
        return q * q * q
    return math.pow(q, gamma)


@_strict
def _focal_term(lp, gamma):
    """For log-probability lp: (q^gamma, q, G), q = 1 - p = -expm1(lp) and
    G = q^gamma (1 - gamma p r), r = lp / q (-> -1 as q -> 0): finite for gamma < 1."""
    p = math.exp(lp)
    q = -math.expm1(lp)
    qg = _pow_gamma(q, gamma)
    r = lp / q if q > 0.0 else -1.0
    pr = p * r if p > 0.0 else 0.0
    return qg, q, qg * (1.0 - gamma * pr)


@_strict
def _focal_alpha(alpha, ca, has_ca, j):
    if has_ca:
        return ca[j]
    return alpha if alpha >= 0.0 else 1.0


@_strict
def _focal_index_block(x, rs, c, y, gamma, alpha, ca, has_ca, ignore_index, scale, red, loss,
                       grad, has_g, lo, hi):
    acc = 0.0
    for i in range(lo, hi):
        yi = y[i]
        if yi == ignore_index:
            if has_g:
                grad[i * c:(i + 1) * c] = 0
            l = 0.0
        else:
            xr = x[i * rs:i * rs + c]
            m = _row_max(xr)
            if has_g:
                g = grad[i * c:(i + 1) * c]
                s = _row_sumexp_store(xr, m, g)
            else:
                s = _row_sumexp(xr, m)
            lp = (np.float64(xr[yi]) - np.float64(m)) - _log_s(xr, m, s)
            at = _focal_alpha(alpha, ca, has_ca, yi)
            qg, q, G = _focal_term(lp, gamma)
            if has_g:
                G *= at * scale
                _row_scale(g, _as(G / s, m))
                g[yi] = _as(G * math.expm1(lp), m)
            l = at * qg * (0.0 - lp)
        if red == NONE:
            loss[i] = l
        else:
            acc += l
    return acc


@_kernel
def _focal_loss(x, rs, n, c, y, gamma, alpha, ca, has_ca, ignore_index, red, loss, grad, has_g,
                par):
    count = 0.0
    for i in range(n):
        if y[i] != ignore_index:
            count += 1.0
    scale = _grad_scale(red, count)
    br = _block_rows(c)
    nb = _n_blocks(n, br)
    partial = np.empty(nb)
    if par:
        for b in prange(nb):
            partial[b] = _focal_index_block(x, rs, c, y, gamma, alpha, ca, has_ca, ignore_index,
                                            scale, red, loss, grad, has_g, b * br,
                                            min(b * br + br, n))
    else:
        for b in range(nb):
            partial[b] = _focal_index_block(x, rs, c, y, gamma, alpha, ca, has_ca, ignore_index,
                                            scale, red, loss, grad, has_g, b * br,
                                            min(b * br + br, n))
    _finish(red, partial, nb, count, loss)


@_strict
def _focal_prob_block(x, rs, c, t, trs, gamma, alpha, ca, has_ca, scale, red, loss, grad, has_g,
                      lo, hi):
    acc = 0.0
    for i in range(lo, hi):
        xr = x[i * rs:i * rs + c]
        tr = t[i * trs:i * trs + c]
        m = _row_max(xr)
        ls = _log_s(xr, m, _row_sumexp(xr, m))
        l = 0.0
        Gs = 0.0
        for j in range(c):
            a = _focal_alpha(alpha, ca, has_ca, j) * np.float64(tr[j])
            if a == 0.0:  # 0 log 0 := 0
                continue
            lp = (np.float64(xr[j]) - np.float64(m)) - ls
            qg, q, G = _focal_term(lp, gamma)
            l += a * qg * (0.0 - lp)
            Gs += a * G
        if has_g:
            g = grad[i * c:(i + 1) * c]
            for j in range(c):
                a = _focal_alpha(alpha, ca, has_ca, j) * np.float64(tr[j])
                lp = (np.float64(xr[j]) - np.float64(m)) - ls
                if a == 0.0:
                    g[j] = _as(scale * math.exp(lp) * Gs, m)
                    continue
                qg, q, G = _focal_term(lp, gamma)
                gj = a * G
                g[j] = _as(scale * (math.exp(lp) * (Gs - gj) - gj * q), m)
        if red == NONE:
            loss[i] = l
        else:
            acc += l
    return acc


@_kernel
def _focal_loss_prob(x, rs, n, c, t, trs, gamma, alpha, ca, has_ca, red, loss, grad, has_g,
                     par):
    scale = _grad_scale(red, np.float64(n))
    br = _block_rows(c)
    nb = _n_blocks(n, br)
    partial = np.empty(nb)
    if par:
        for b in prange(nb):
            partial[b] = _focal_prob_block(x, rs, c, t, trs, gamma, alpha, ca, has_ca, scale,
                                           red, loss, grad, has_g, b * br, min(b * br + br, n))
    else:
        for b in range(nb):
            partial[b] = _focal_prob_block(x, rs, c, t, trs, gamma, alpha, ca, has_ca, scale,
                                           red, loss, grad, has_g, b * br, min(b * br + br, n))
    _finish(red, partial, nb, np.float64(n), loss)


# --- elementwise sigmoid losses (all arithmetic in T, as the core) ------------------
@_inline
def _xmul(a, v):
    """a * v, but 0 when a == 0 (so 0 * inf := 0)."""
    return a * v if a != 0 else _as(0.0, v)


@_inline
def _sigmoid_parts(xv):
    """(softplus(x), softplus(-x), sigmoid(x), sigmoid(-x)) from e = exp(-|x|)."""
    zero = _as(0.0, xv)
    one = _as(1.0, xv)
    e = fexp(-(-xv if xv < zero else xv))
    L = flog1p_unit(e)
    inv = one / (one + e)
    sp = (xv if xv > zero else zero) + L
    spn = (-xv if xv < zero else zero) + L
    sig = inv if xv >= zero else e * inv
    sign = e * inv if xv >= zero else inv
    return sp, spn, sig, sign


@_inline
def _bce_elem(xv, tv, pw, wv):
    """One BCE element: (loss, d loss / dx)."""
    sp, spn, sig, sign = _sigmoid_parts(xv)
    pwt = pw * tv
    nt = _as(1.0, xv) - tv
    l = wv * (_xmul(pwt, spn) + _xmul(nt, sp))
    return l, wv * (nt * sig - pwt * sign)


@_strict
def _bce_row(xr, tr, pw, wrow, sc, g, el):
    """One row of BCE into g and el (float64 losses); every row contiguous and the
    stores unconditional (the caller passes scratch rows for unwanted outputs), so the
    loop vectorises. The row sum is taken afterwards by _sum_f64."""
    for j in range(xr.shape[0]):
        l, gv = _bce_elem(xr[j], tr[j], _as(pw[j], sc), _as(wrow[j], sc))
        g[j] = sc * gv
        el[j] = np.float64(l)


@_reduce
def _sum_f64(v):
    s = 0.0
    for k in range(v.shape[0]):
        s += v[k]
    return s


@_inline
def _sfl_elem(xv, tv, alpha, gamma, gamma2):
    """One sigmoid-focal element: (loss, d loss / dx); gamma2 selects gamma == 2."""
    one = _as(1.0, xv)
    sp, spn, p, pn = _sigmoid_parts(xv)
    nt = one - tv
    ce = _xmul(tv, spn) + _xmul(nt, sp)
    mm = p * nt + pn * tv
    mg = mm * mm if gamma2 else _as(_pow_gamma(np.float64(mm), gamma), xv)
    at = _as(alpha, xv) * tv + _as(1.0 - alpha, xv) * nt if alpha >= 0.0 else one
    r = p * pn / mm if mm > _as(0.0, xv) else one
    cer = _xmul(r, ce)  # ce r -> 0 as x -> +-inf (r ~ e^-|x|), also at inf
    two = _as(2.0, xv)
    gout = at * ((p * nt - pn * tv) * mg + _as(gamma, xv) * cer * mg * (one - two * tv))
    return at * ce * mg, gout


@_strict
def _sfl_row(xr, tr, alpha, gamma, sc, g, el):
    """One row of the sigmoid focal loss (as _bce_row). gamma == 2 has its own loop
    (no pow: vectorises), as in the core."""
    if gamma == 2.0:
        for j in range(xr.shape[0]):
            l, gv = _sfl_elem(xr[j], tr[j], alpha, 2.0, True)
            g[j] = sc * gv
            el[j] = np.float64(l)
    else:
        for j in range(xr.shape[0]):
            l, gv = _sfl_elem(xr[j], tr[j], alpha, gamma, False)
            g[j] = sc * gv
            el[j] = np.float64(l)


@_strict
def _binary_block(which, x, rs, c, t, trs, pw, has_pw, w, wrs, wcs, has_w, gamma, alpha, scale,
                  red, loss, grad, has_g, lo, hi):
    """which: 0 binary_cross_entropy, 1 sigmoid_focal_loss; rows [lo, hi)."""
    has_el = red == NONE
    sc = _as(scale, x.dtype.type(0))
    g_scratch = np.empty(c, x.dtype)  # outputs not wanted go here
    el_scratch = np.empty(c)
    pwrow = np.empty(c)
    wrow = np.empty(c)
    for j in range(c):
        pwrow[j] = pw[j] if has_pw else 1.0
        wrow[j] = 1.0
    acc = 0.0
    for i in range(lo, hi):
        xr = x[i * rs:i * rs + c]
        tr = t[i * trs:i * trs + c]
        g = grad[i * c:(i + 1) * c] if has_g else g_scratch
        el = loss[i * c:(i + 1) * c] if has_el else el_scratch
        if which == 0:
            if has_w:  # gathered into a contiguous row (strides may be 0 or any)
                for j in range(c):
                    wrow[j] = w[i * wrs + j * wcs]
            _bce_row(xr, tr, pwrow, wrow, sc, g, el)
        else:
            _sfl_row(xr, tr, alpha, gamma, sc, g, el)
        if not has_el:
            acc += _sum_f64(el)
    return acc


@_kernel
def _binary(which, x, rs, n, c, t, trs, pw, has_pw, w, wrs, wcs, has_w, gamma, alpha, red, loss,
            grad, has_g, par):
    count = np.float64(n) * np.float64(c)
    scale = _grad_scale(red, count)
    br = _block_rows(c)
    nb = _n_blocks(n, br)
    partial = np.empty(nb)
    if par:
        for b in prange(nb):
            partial[b] = _binary_block(which, x, rs, c, t, trs, pw, has_pw, w, wrs, wcs, has_w,
                                       gamma, alpha, scale, red, loss, grad, has_g, b * br,
                                       min(b * br + br, n))
    else:
        for b in range(nb):
            partial[b] = _binary_block(which, x, rs, c, t, trs, pw, has_pw, w, wrs, wcs, has_w,
                                       gamma, alpha, scale, red, loss, grad, has_g, b * br,
                                       min(b * br + br, n))
    _finish(red, partial, nb, count, loss)
