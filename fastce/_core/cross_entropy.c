/*
 * cross_entropy.c -- softmax cross-entropy with class-index or probability
 * targets, class weights, ignore_index and label smoothing (torch semantics),
 * loss and gradient in one pass per row.
 *
 * Class indices y, weights w (1 if absent), smoothing eps, C classes,
 * logp_c = (x_c - m) - log s:
 *   l = (1 - eps) w_y (-logp_y) + eps/C sum_c w_c (-logp_c)
 *   dl/dx_c = a p_c - (1 - eps) w_y [c == y] - eps/C w_c,  a = (1 - eps) w_y + eps/C sum_c w_c
 *   at c == y the p_y - 1 part is formed as expm1(logp_y) (no cancellation when p_y -> 1).
 * Probability targets t, t' = (1 - eps) t + eps/C:
 *   l = sum_c w_c t'_c (log s - (x_c - m))  (terms with w_c t'_c == 0 are 0: 0 log 0 := 0)
 *   dl/dx_c = p_c A - w_c t'_c,  A = sum_c w_c t'_c
 */
#include "internal.h"

#include "dtype_f32.h"
#include "row_t.h"
#include "loss_t.h"
#include "cross_entropy_t.h"
#include "dtype_end.h"

#include "dtype_f64.h"
#include "row_t.h"
#include "loss_t.h"
#include "cross_entropy_t.h"
#include "dtype_end.h"
