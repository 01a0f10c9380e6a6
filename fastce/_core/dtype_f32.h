/* Template parameters for float32 kernels; undone by dtype_end.h. */
#define T float
#define FC(name) name##_f32
#define FC_EXP expf
#define FC_LOG1P fc_log1p_unit_f32 /* its argument is always in [0, 1] */
#define FC_T_INF ((float)INFINITY)
