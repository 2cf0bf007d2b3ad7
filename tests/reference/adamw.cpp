#include "tests/reference/adamw.hpp"

#include <cmath>

namespace vkm::ref {

void adamw_step(Vec& p, Vec& m, Vec& v, const Vec& g, double lr, uint32_t t, double clip, const AdamWHyper& h) {
  const double bias1 = 1 - std::pow(h.beta1, t), bias2 = 1 - std::pow(h.beta2, t);
  for (size_t i = 0; i < p.size(); ++i) {
    const double gi = g[i] * clip;
    p[i] *= 1 - lr * h.weight_decay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
    const double denom = std::sqrt(v[i]) / std::sqrt(bias2) + h.eps;
    p[i] -= lr / bias1 * m[i] / denom;
  }
}

}  // namespace vkm::ref
