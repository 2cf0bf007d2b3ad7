#pragma once
// Reference matrix products in double precision, written from the definitions (row-major storage).
#include <cstdint>
#include <vector>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

// C[m,n] = sum_k A(m,k) B(k,n), where A(m,k) is a[m*K+k], or a[k*M+m] with trans_a, and B(k,n) is b[k*N+n],
// or b[n*K+k] with trans_b.
Vec matmul(const Vec& a, const Vec& b, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b);

// A linear layer with X [M,K], W [N,K], dY [M,N]: its three products.
inline Vec linear(const Vec& x, const Vec& w, int64_t M, int64_t N, int64_t K) {  // Y = X·Wᵀ
  return matmul(x, w, M, N, K, false, true);
}
inline Vec linear_backward_input(const Vec& dy, const Vec& w, int64_t M, int64_t N, int64_t K) {  // dX = dY·W
  return matmul(dy, w, M, K, N, false, false);
}
inline Vec linear_backward_weight(const Vec& dy, const Vec& x, int64_t M, int64_t N, int64_t K) {  // dW = dYᵀ·X
  return matmul(dy, x, N, K, M, true, false);
}

}  // namespace vkm::ref
