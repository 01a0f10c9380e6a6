"""The fast-math flags of every Numba kernel, defined once (never ad hoc).

LLVM fast-math flags are attached to each floating-point instruction of the
function they are compiled in, and they stay on those instructions when LLVM
later inlines the function into a caller compiled with other flags. So each
helper can carry exactly the licence its numerics allow:

``FASTMATH`` -- reduction loops only (row sums of exp, of weights, of
elementwise losses). ``reassoc`` is what lets LLVM vectorise a float64
accumulator (partial sums per SIMD lane, combined at the end). The order is
then fixed by the compiled code, never by the thread count, so results stay
bit-identical for any number of threads.

``FASTMATH_STRICT`` -- everything else: the same flags WITHOUT ``reassoc``.
Reassociation would silently undo the algorithms the numerics rest on:
Cody-Waite range reduction in the exp (``(x - k*ln2_hi) - k*ln2_lo`` ->
``x - k*ln2``), max-subtraction (``(x - m) - lse`` -> ``x - (m + lse)``,
which loses all digits of a log-probability next to logits of 1e4), and the
``expm1``/``1 - p`` forms.

Neither set has ``nnan`` or ``ninf``: -inf logits and NaN keep their IEEE
meaning (an all -inf row, a NaN that must propagate, exp(-inf) = 0). ``nsz``
(sign of zero), ``arcp`` (x / y as x * (1 / y)), ``contract`` (fused
multiply-add) and ``afn`` (approximate libm calls) change at most the last bit.

Every ``@njit`` in this package takes ``fastmath=`` from here; a test rejects
any other ``fastmath=`` value.
"""

# plain sets: Numba accepts set (not frozenset); treat them as read-only
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
FASTMATH_STRICT = FASTMATH - {"reassoc"}

assert not {"nnan", "ninf", "fast"} & FASTMATH
