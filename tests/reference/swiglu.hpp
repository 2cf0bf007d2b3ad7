#pragma once
// Reference SwiGLU in double precision, elementwise over equal-length vectors.
#include "tests/reference/rounding.hpp"

namespace vkm::ref {

// h = silu(gate) * up, silu(g) = g / (1 + e^-g)
Vec swiglu(const Vec& gate, const Vec& up);

// The gradients of sum(h * dh) with respect to gate and up.
struct SwigluGrads {
  Vec dgate, dup;
};
SwigluGrads swiglu_backward(const Vec& gate, const Vec& up, const Vec& dh);

}  // namespace vkm::ref
