#include "tests/reference/swiglu.hpp"

#include <cmath>
#include <cstddef>

namespace vkm::ref {

namespace {
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

Vec swiglu(const Vec& gate, const Vec& up) {
  Vec h(gate.size());
  for (size_t i = 0; i < h.size(); ++i) h[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return h;
}

SwigluGrads swiglu_backward(const Vec& gate, const Vec& up, const Vec& dh) {
  SwigluGrads g{Vec(gate.size()), Vec(gate.size())};
  for (size_t i = 0; i < gate.size(); ++i) {
    // d/dg [g s(g)] = s + g s (1 - s), with s' = s (1 - s)
    const double s = sigmoid(gate[i]);
    g.dgate[i] = dh[i] * up[i] * (s + gate[i] * s * (1 - s));
    g.dup[i] = dh[i] * gate[i] * s;
  }
  return g;
}

}  // namespace vkm::ref
