#pragma once
// Reference rotary position embedding in double precision, the "rotate_half" convention, with YaRN
// frequencies written after transformers' _compute_yarn_parameters (interpolated and extrapolated
// frequencies blended by a ramp). x is [B, T, H, D]; the token t sits at position start + t.
#include <cstdint>
#include <optional>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

struct Yarn {
  double factor;
  int64_t original_max_position;
  double beta_fast, beta_slow;
  double attention_factor;  // multiplies cos and sin
};

struct Rope {
  int64_t B, T, H, D;
  int64_t start = 0;
  double theta = 1e6;
  std::optional<Yarn> yarn;
};

// The frequency of pair i < D/2, radians per position.
Vec rope_frequencies(const Rope& r);
Vec rope(const Vec& x, const Rope& r);
// The gradient of L = Σ dy·rope(x) with respect to x: each pair turned back by its angle.
Vec rope_backward(const Vec& dy, const Rope& r);

}  // namespace vkm::ref
