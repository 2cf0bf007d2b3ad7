#include "tests/reference/matmul.hpp"

namespace vkm::ref {

Vec matmul(const Vec& a, const Vec& b, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b) {
  Vec c(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += (trans_a ? a[k * M + m] : a[m * K + k]) * (trans_b ? b[n * K + k] : b[k * N + n]);
      c[m * N + n] = s;
    }
  return c;
}

}  // namespace vkm::ref
