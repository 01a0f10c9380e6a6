/* Template parameters for float64 kernels; undone by dtype_end.h. */
#define T double
#define FC(name) name##_f64
#define FC_EXP exp
#define FC_LOG1P log1p
#define FC_T_INF ((double)INFINITY)
