/*
 * internal.h -- what every translation unit of the fastce C core shares.
 *
 * Design note (read this first)
 * -----------------------------
 * - Each public function validates everything (fc_check_* below), then runs a
 *   parallel loop over fixed-size BLOCKS of rows. A block is handled by one
 *   thread, its rows in order; per-block float64 partial sums are combined in
 *   block order afterwards. The block size depends only on (n_rows,
 *   n_classes), never on the thread count, so every result is bit-identical
 *   for any number of threads (and there is no racy shared accumulator).
 * - Per row, the logits are read once into cache: pass 1 the max, pass 2 the
 *   exponentials (stored into the output/gradient row when one is wanted, so
 *   exp is evaluated once per element) with a float64 sum, pass 3 the
 *   gradient. Rows of up to ~64k float32 classes stay in L2.
 * - Vectorised exp/log1p come from glibc's libmvec: the scalar functions are
 *   redeclared with `omp declare simd` (below) and the hot loops carry
 *   `omp simd`; with -fno-math-errno (never -ffast-math: inf/NaN keep their
 *   IEEE meaning) GCC then calls the SIMD variants. FC_SIMD_CLONES compiles
 *   each row primitive for AVX-512, AVX2 and baseline x86-64 and picks one at
 *   load time.
 * - Per-dtype code is written once in *_t.h templates included for float and
 *   double (T, FC(name) and the math-function macros are set by dtype_*.h).
 */
#ifndef FASTCE_INTERNAL_H
#define FASTCE_INTERNAL_H

#define FASTCE_BUILDING_LIBRARY 1
#include "fastce.h"

#include <math.h>   /* exp, log, log1p, expm1, pow, INFINITY */
#include <stddef.h> /* size_t, ptrdiff_t */
#include <stdint.h> /* PTRDIFF_MAX */
#include <stdint.h> /* int64_t, INT64_MAX */
#include <stdlib.h> /* malloc, free */

#ifdef _OPENMP
#include <omp.h>
#endif

/* --- vectorised libm (glibc libmvec) ------------------------------------ */
#if defined(__GLIBC__) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double exp(double);
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)
#pragma omp declare simd notinbranch
float log1pf(float);
#pragma omp declare simd notinbranch
double log1p(double);
#endif
#define FC_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FC_SIMD_CLONES
#endif

#define FC_RESTRICT restrict

/* the *_t.h templates define helpers that not every translation unit uses */
#pragma GCC diagnostic ignored "-Wunused-function"

/* --- threads --------------------------------------------------------------- */
/* Below this many elements a call stays on the calling thread: waking an
 * OpenMP team costs more than the work (measured in bench/, see README). */
#define FC_PAR_MIN_ELEMS ((int64_t)1 << 18)

int fc_threads_for(const fastce_options *o, int64_t n_rows, int64_t n_classes, int64_t n_blocks);

/* --- blocks: the unit of deterministic reduction ----------------------------- */
/* Rows per block: about FC_BLOCK_ELEMS elements, at least 1 row. */
#define FC_BLOCK_ELEMS ((int64_t)1 << 14)
static inline int64_t fc_block_rows(int64_t n_classes) {
    int64_t r = n_classes > 0 ? FC_BLOCK_ELEMS / n_classes : FC_BLOCK_ELEMS;
    return r > 0 ? r : 1;
}
static inline int64_t fc_n_blocks(int64_t n_rows, int64_t block_rows) {
    return (n_rows + block_rows - 1) / block_rows;
}
/* Blocks are handed out dynamically: a thread that the OS delays just takes
 * fewer blocks instead of stalling the call (results do not depend on who
 * takes which block). */
/* Run BODY for I in [0, N): on a team of `nt` threads taking chunks of
 * `chunk` iterations dynamically (a thread the OS delays just takes fewer),
 * or -- when nt == 1 -- with no parallel region at all (a team of one still
 * costs microseconds, which small calls cannot afford). The caller names its
 * thread count `nt` and its chunk size `chunk` (the pragma refers to them). */
#define FC_PARALLEL_FOR(I, N, BODY)                                                \
    do {                                                                          \
        if (nt > 1) {                                                             \
            _Pragma("omp parallel for schedule(dynamic, chunk) num_threads(nt)")  \
            for (int64_t I = 0; I < (N); I++) { BODY }                            \
        } else {                                                                  \
            for (int64_t I = 0; I < (N); I++) { BODY }                            \
        }                                                                         \
    } while (0)

/* Reductions over at most this many blocks keep their partial sums on the stack. */
#define FC_STACK_BLOCKS 256

/* Sum partial[0..n) in order (the fixed combination order). */
double fc_sum_ordered(const double *partial, int64_t n);

/* --- validation ---------------------------------------------------------- */
/* Copy *opt (or the defaults) into *o and check the common fields. */
int fc_resolve_options(const fastce_options *opt, fastce_options *o);
/* A (n_rows, n_classes) array of elem_size-byte elements, rows `row_stride`
 * and classes `col_stride` elements apart: sizes and strides non-negative,
 * every byte offset representable, pointer non-NULL if non-empty. */
int fc_check_strided(const void *p, int64_t n_rows, int64_t n_classes, int64_t row_stride,
                     int64_t col_stride, size_t elem_size);
/* The same with unit class stride; `writable` rows must not overlap each other. */
int fc_check_matrix(const void *p, int64_t n_rows, int64_t n_classes, int64_t row_stride,
                    size_t elem_size, int writable);
/* n values all finite (NULL is allowed: absent). */
int fc_check_finite(const double *v, int64_t n);

/* Gradient scale of a reduction: 1 / denominator for MEAN (0 if the
 * denominator is 0, so that an empty mean has a zero gradient), else 1. */
static inline double fc_grad_scale(int reduction, double denominator) {
    if (reduction != FASTCE_REDUCTION_MEAN) return 1.0;
    return denominator != 0.0 ? 1.0 / denominator : 0.0;
}

/* log1p(e) for e in [0, 1] (or NaN), in float: the sigmoid losses only need
 * log1p(exp(-|x|)). With u = e / (2 + e) in [0, 1/3], log1p(e) = 2 atanh(u)
 * = 2u (1 + z/3 + z^2/5 + ... + z^6/13 + ...), z = u^2; the terms left out are
 * below (1/9)^7 / 15 = 1.4e-8 relative. Max error 2.8 ulp over a sweep of
 * [0, 1] and 2^-1..2^-149 (libmvec's log1pf: ~2 ulp, but 3x the cycles, and a
 * scalar call for each row tail). One division, seven multiply-adds,
 * branch-free, so it vectorises with the loop around it. */
static inline float fc_log1p_unit_f32(float e) {
    const float u = e / (2.0f + e), z = u * u;
    float p = 1.0f / 13.0f;
    p = p * z + 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    p = p * z + 1.0f;
    return 2.0f * u * p;
}

/* Focal modulating factor helpers (double): q^gamma with exact fast paths. */
static inline double fc_pow_gamma(double q, double gamma) {
    if (gamma == 2.0) return q * q;
    if (gamma == 1.0) return q;
    if (gamma == 0.0) return 1.0;
    if (gamma == 3.0) return q * q * q;
    return pow(q, gamma);
}

#endif /* FASTCE_INTERNAL_H */
