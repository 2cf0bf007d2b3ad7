#include "tests/reference/matmul.hpp"

namespace vkm::ref {

Vec matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t M, int64_t N, int64_t K, bool trans_a,
           bool trans_b) {
  Vec c(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += double(trans_a ? a[k * M + m] : a[m * K + k]) * double(trans_b ? b[n * K + k] : b[k * N + n]);
      c[m * N + n] = s;
    }
  return c;
}

Vec linear(const std::vector<float>& x, const std::vector<float>& w, int64_t M, int64_t N, int64_t K) {
  Vec y(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) y[m * N + n] += double(x[m * K + k]) * w[n * K + k];
  return y;
}

Vec linear_backward_input(const std::vector<float>& dy, const std::vector<float>& w, int64_t M, int64_t N, int64_t K) {
  Vec dx(M * K, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) dx[m * K + k] += double(dy[m * N + n]) * w[n * K + k];
  return dx;
}

Vec linear_backward_weight(const std::vector<float>& dy, const std::vector<float>& x, int64_t M, int64_t N, int64_t K) {
  Vec dw(N * K, 0.0);
  for (int64_t m = 0; m < M; ++m)  // m outermost: rows of dY and X are read in memory order
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) dw[n * K + k] += double(dy[m * N + n]) * x[m * K + k];
  return dw;
}

}  // namespace vkm::ref
