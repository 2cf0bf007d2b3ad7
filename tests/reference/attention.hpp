#pragma once
// Reference causal grouped-query attention in double precision, materializing each head's softmax matrix.
// Inputs are double so that finite differences of the forward can check the backward.
#include <cstdint>
#include <vector>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

// q [B,T,Hq,D], k and v [B,T,Hkv,D]; query head h reads kv head h / (Hq/Hkv).
struct AttentionShape {
  int64_t B, T, Hq, Hkv, D;
};

struct AttentionForward {
  Vec out;  // [B,T,Hq,D]
  Vec lse;  // [B,Hq,T]: log sum_j exp(score_ij)
};

struct AttentionGrads {
  Vec dq, dk, dv;
};

// out_i = sum_j P_ij v_j, P = softmax_j(q_i·k_j / sqrt(D)) over keys j <= i with j < length. lengths holds one
// length per sequence, or is empty (every sequence T long); rows at or past a length give out 0 and lse 0.
AttentionForward attention_forward(const AttentionShape& s, const Vec& q, const Vec& k, const Vec& v,
                                   const std::vector<int32_t>& lengths = {});

// The gradients of sum(dout ∘ out) with respect to q, k and v.
AttentionGrads attention_backward(const AttentionShape& s, const Vec& q, const Vec& k, const Vec& v, const Vec& dout,
                                  const std::vector<int32_t>& lengths = {});

}  // namespace vkm::ref
