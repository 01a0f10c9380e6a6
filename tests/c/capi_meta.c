/*
 * capi_meta.c -- prints what the fastce C API says about itself, one
 * `key value` per line, for tests/test_c_api.py to check: the version macros
 * and the linked library's version, the name of every status code (and of
 * codes out of range), whether fastce_options_default() equals
 * FASTCE_OPTIONS_INIT field by field, and the thread-count getter after each
 * setter call.
 */
#include <fastce.h>

#include <stdio.h> /* printf */

/* 1 if every field of a equals that of b (not memcmp: padding may differ). */
static int options_equal(const fastce_options *a, const fastce_options *b) {
    return a->reduction == b->reduction && a->n_threads == b->n_threads &&
           a->ignore_index == b->ignore_index && a->label_smoothing == b->label_smoothing &&
           a->gamma == b->gamma && a->alpha == b->alpha && a->class_alpha == b->class_alpha &&
           a->class_weight == b->class_weight && a->pos_weight == b->pos_weight &&
           a->weight == b->weight && a->weight_row_stride == b->weight_row_stride &&
           a->weight_col_stride == b->weight_col_stride;
}

int main(void) {
    const fastce_options init = FASTCE_OPTIONS_INIT;
    const fastce_options dflt = fastce_options_default();
    const int set_to[] = {1, 2, 3, 0, -5};
    int k;

    printf("version_macros %d %d %d %d\n", FASTCE_VERSION_MAJOR, FASTCE_VERSION_MINOR,
           FASTCE_VERSION_PATCH, FASTCE_VERSION_NUMBER);
    printf("version_number %d\n", fastce_version_number());
    for (k = -2; k <= 7; k++) printf("status_name %d %s\n", k, fastce_status_name(k));
    printf("status_values %d %d %d %d %d %d\n", FASTCE_OK, FASTCE_ERR_NULL_POINTER,
           FASTCE_ERR_BAD_SIZE, FASTCE_ERR_TARGET_OUT_OF_RANGE, FASTCE_ERR_BAD_ARGUMENT,
           FASTCE_ERR_ALLOC);
    printf("reduction_values %d %d %d\n", FASTCE_REDUCTION_NONE, FASTCE_REDUCTION_MEAN,
           FASTCE_REDUCTION_SUM);
    printf("options_default_equals_init %d\n", options_equal(&init, &dflt));
    printf("options_init %d %d %lld %a %a %a %d %d %d %d %lld %lld\n", init.reduction,
           init.n_threads, (long long)init.ignore_index, init.label_smoothing, init.gamma,
           init.alpha, init.class_alpha == 0, init.class_weight == 0, init.pos_weight == 0,
           init.weight == 0, (long long)init.weight_row_stride, (long long)init.weight_col_stride);
    printf("num_threads_initial %d\n", fastce_get_num_threads());
    for (k = 0; k < (int)(sizeof set_to / sizeof set_to[0]); k++) {
        fastce_set_num_threads(set_to[k]);
        printf("num_threads_after_set %d %d\n", set_to[k], fastce_get_num_threads());
    }
    return 0;
}
