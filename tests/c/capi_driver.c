/*
 * capi_driver.c -- runs fastce C API calls described in a binary case file and
 * writes each call's status and outputs to a binary result file (driven by
 * tests/test_c_api.py, which encodes the cases and checks the results
 * against the Python API).
 *
 * usage: capi_driver CASES RESULTS
 *
 * A case (native byte order) is NH int64 header fields (enum field below),
 * 3 doubles (label_smoothing, gamma, alpha), then the arrays in this order:
 * x (X_LEN elements of the dtype), index targets (Y_LEN int64), dense targets
 * (T_LEN elements of the dtype), class_weight, class_alpha, pos_weight,
 * weight (CW_LEN, CA_LEN, PW_LEN, W_LEN doubles). A length of 0 passes NULL.
 * Every buffer is allocated with exactly its length, so an out-of-bounds
 * access shows under valgrind or AddressSanitizer.
 *
 * Its result is the int64 status, LOSS_LEN doubles of the loss buffer and
 * OUT_LEN elements of the out/grad buffer. Both are filled with the byte 0xA5
 * before the call, so the test can see that nothing was written on error.
 */
#include "capi_dispatch.h"

#include <stdint.h> /* int64_t */
#include <stdio.h>  /* FILE, fopen, fread, fwrite */
#include <stdlib.h> /* malloc, free */
#include <string.h> /* memset */

enum field {
    FN, DTYPE, N, C, RS, TRS, ORS, REDUCTION, N_THREADS, IGNORE_INDEX, WEIGHT_RS, WEIGHT_CS,
    X_LEN, Y_LEN, T_LEN, CW_LEN, CA_LEN, PW_LEN, W_LEN, LOSS_LEN, OUT_LEN, NULLS, NH
};

/* NULLS bits: these pointers are passed as NULL whatever their length. */
enum { NULL_X = 1, NULL_TARGET = 2, NULL_LOSS = 4, NULL_OUT = 8, NULL_OPT = 16 };

/* Read `len` items of `size` bytes into a buffer of exactly that size (NULL
 * for len 0); *ok is cleared on a short read or a failed allocation. */
static void *read_array(FILE *f, int64_t len, size_t size, int *ok) {
    if (len <= 0) return NULL;
    void *p = malloc((size_t)len * size);
    if (!p || fread(p, size, (size_t)len, f) != (size_t)len) *ok = 0;
    return p;
}

/* A buffer of exactly len items filled with 0xA5 bytes (NULL for len 0). */
static void *sentinel_array(int64_t len, size_t size, int *ok) {
    if (len <= 0) return NULL;
    void *p = malloc((size_t)len * size);
    if (p) memset(p, 0xA5, (size_t)len * size);
    else *ok = 0;
    return p;
}

/* Run one case read from `in`, append its result to `out`. Returns 1 on
 * success, 0 at the end of the input, -1 on malformed input. */
static int run_case(FILE *in, FILE *res) {
    int64_t h[NH];
    double d[3];
    if (fread(h, sizeof h[0], NH, in) != NH) return 0;
    if (fread(d, sizeof d[0], 3, in) != 3 || (h[DTYPE] != 4 && h[DTYPE] != 8)) return -1;
    const size_t es = (size_t)h[DTYPE];
    int ok = 1;
    void *x = read_array(in, h[X_LEN], es, &ok);
    int64_t *y = (int64_t *)read_array(in, h[Y_LEN], sizeof(int64_t), &ok);
    void *t = read_array(in, h[T_LEN], es, &ok);
    double *cw = (double *)read_array(in, h[CW_LEN], sizeof(double), &ok);
    double *ca = (double *)read_array(in, h[CA_LEN], sizeof(double), &ok);
    double *pw = (double *)read_array(in, h[PW_LEN], sizeof(double), &ok);
    double *w = (double *)read_array(in, h[W_LEN], sizeof(double), &ok);
    double *loss = (double *)sentinel_array(h[LOSS_LEN], sizeof(double), &ok);
    void *out = sentinel_array(h[OUT_LEN], es, &ok);

    fastce_options opt = FASTCE_OPTIONS_INIT;
    opt.reduction = (int)h[REDUCTION];
    opt.n_threads = (int)h[N_THREADS];
    opt.ignore_index = h[IGNORE_INDEX];
    opt.label_smoothing = d[0];
    opt.gamma = d[1];
    opt.alpha = d[2];
    opt.class_weight = cw;
    opt.class_alpha = ca;
    opt.pos_weight = pw;
    opt.weight = w;
    opt.weight_row_stride = h[WEIGHT_RS];
    opt.weight_col_stride = h[WEIGHT_CS];

    const int64_t nulls = h[NULLS];
    struct capi_call k = {(int)h[FN], h[N], h[C], h[RS], h[TRS], h[ORS],
                          nulls & NULL_X ? NULL : x, nulls & NULL_TARGET ? NULL : t,
                          nulls & NULL_TARGET ? NULL : y, nulls & NULL_OUT ? NULL : out,
                          nulls & NULL_LOSS ? NULL : loss, nulls & NULL_OPT ? NULL : &opt};
    int64_t status = -1;
    if (ok) status = capi_dispatch(&k, (int)es);
    if (ok) {
        fwrite(&status, sizeof status, 1, res);
        if (loss) fwrite(loss, sizeof(double), (size_t)h[LOSS_LEN], res);
        if (out) fwrite(out, es, (size_t)h[OUT_LEN], res);
    }
    free(x); free(y); free(t); free(cw); free(ca); free(pw); free(w); free(loss); free(out);
    return ok ? 1 : -1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CASES RESULTS\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *res = fopen(argv[2], "wb");
    if (!in || !res) {
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    int r, count = 0;
    while ((r = run_case(in, res)) == 1) count++;
    fclose(in);
    if (fclose(res) != 0 || r < 0) {
        fprintf(stderr, "case %d: malformed input or write error\n", count);
        return 2;
    }
    printf("%d cases\n", count);
    return 0;
}
