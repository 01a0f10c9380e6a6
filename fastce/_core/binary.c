/*
 * binary.c -- elementwise losses on sigmoid probabilities: binary
 * cross-entropy with logits (torch BCEWithLogitsLoss) and the sigmoid focal
 * loss (torchvision.ops.sigmoid_focal_loss).
 *
 * With e = exp(-|x|) (never overflows), L = log1p(e) (in float32 by the core's
 * polynomial for [0, 1], fc_log1p_unit_f32):
 *   softplus(x) = max(x, 0) + L,   softplus(-x) = max(-x, 0) + L
 *   sigmoid(x)  = 1/(1+e) for x >= 0, e/(1+e) otherwise; sigmoid(-x) the other one
 * BCE, pos_weight pw, weight w:
 *   l = w (pw t softplus(-x) + (1 - t) softplus(x))       (a zero coefficient gives 0,
 *   dl/dx = w ((1 - t) sigmoid(x) - pw t sigmoid(-x))      also at x = +-inf)
 * Sigmoid focal, p = sigmoid(x), p' = sigmoid(-x):
 *   ce = t softplus(-x) + (1 - t) softplus(x),  m = 1 - p_t = p (1 - t) + p' t
 *   l = alpha_t ce m^gamma,  alpha_t = alpha t + (1 - alpha)(1 - t)  (1 if alpha < 0)
 *   dl/dx = alpha_t ((p (1 - t) - p' t) m^gamma + gamma ce m^gamma (1 - 2t) r),
 *   r = p p' / m  (<= 1; the limit 1 where m = 0), so gamma < 1 stays finite;
 *   ce r := 0 where r == 0 (x = +-inf: ce r ~ |x| e^-|x| -> 0, the limit, not inf * 0).
 */
#include "internal.h"

#include "dtype_f32.h"
#include "loss_t.h"
#include "binary_t.h"
#include "dtype_end.h"

#include "dtype_f64.h"
#include "loss_t.h"
#include "binary_t.h"
#include "dtype_end.h"
