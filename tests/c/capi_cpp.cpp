// capi_cpp.cpp -- fastce.h from C++11: the header compiles as C++ (extern "C"
// linkage, FASTCE_OPTIONS_INIT as an aggregate initialiser) and the library
// works with std::vector buffers. Prints `key hexfloat...` lines that
// tests/test_c_api.py compares with the Python API on the same inputs:
// a weighted, label-smoothed cross-entropy (float64, sum) with its gradient,
// and a float32 softmax.
#include <fastce.h>

#include <cstdint>  // std::int64_t
#include <cstdio>   // std::printf
#include <vector>

namespace {

void print_hex(const char *key, const std::vector<double> &v) {
    std::printf("%s", key);
    for (double d : v) std::printf(" %a", d);
    std::printf("\n");
}

}  // namespace

int main() {
    const std::int64_t n = 3, c = 4;
    std::vector<double> logits = {0.5, -1.25, 3.0, 0.0, 2.0,  2.0,
                                  -7.5, 1.0, -0.5, 4.25, 0.125, -3.0};
    std::vector<std::int64_t> target = {2, -100, 1};
    std::vector<double> class_weight = {1.0, 0.5, 2.0, 0.25};
    fastce_options opt = FASTCE_OPTIONS_INIT;
    opt.reduction = FASTCE_REDUCTION_SUM;
    opt.label_smoothing = 0.1;
    opt.class_weight = class_weight.data();
    std::vector<double> loss(1), grad(n * c);
    int st = fastce_cross_entropy_f64(logits.data(), n, c, c, target.data(), &opt, loss.data(),
                                      grad.data(), c);
    std::printf("cross_entropy_status %s\n", fastce_status_name(st));
    print_hex("cross_entropy_loss", loss);
    print_hex("cross_entropy_grad", grad);

    std::vector<float> x(logits.begin(), logits.end()), p(n * c);
    st = fastce_softmax_f32(x.data(), n, c, c, p.data(), c, nullptr);
    std::printf("softmax_status %s\n", fastce_status_name(st));
    print_hex("softmax", std::vector<double>(p.begin(), p.end()));
    return 0;
}
