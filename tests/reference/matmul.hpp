#pragma once
// Reference matrix products in double precision, written from the definitions (row-major storage).
#include <cstdint>
#include <vector>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

// C[m,n] = sum_k A(m,k) B(k,n), where A(m,k) is a[m*K+k], or a[k*M+m] with trans_a, and B(k,n) is b[k*N+n],
// or b[n*K+k] with trans_b.
Vec matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t M, int64_t N, int64_t K, bool trans_a,
           bool trans_b);

// A linear layer with X [M,K], W [N,K], dY [M,N].
Vec linear(const std::vector<float>& x, const std::vector<float>& w, int64_t M, int64_t N, int64_t K);  // Y = X·Wᵀ
Vec linear_backward_input(const std::vector<float>& dy, const std::vector<float>& w, int64_t M, int64_t N,
                          int64_t K);  // dX [M,K] = dY·W
Vec linear_backward_weight(const std::vector<float>& dy, const std::vector<float>& x, int64_t M, int64_t N,
                           int64_t K);  // dW [N,K] = dYᵀ·X

}  // namespace vkm::ref
