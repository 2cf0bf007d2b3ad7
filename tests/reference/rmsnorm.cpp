#include "tests/reference/rmsnorm.hpp"

#include <cmath>

namespace vkm::ref {

RmsNorm rmsnorm(const Vec& x, const Vec& w, int64_t rows, int64_t C, double eps) {
  RmsNorm out{Vec(rows * C), Vec(rows)};
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = &x[r * C];
    double squares = 0;
    for (int64_t c = 0; c < C; ++c) squares += xr[c] * xr[c];
    const double rstd = 1 / std::sqrt(squares / C + eps);
    out.rstd[r] = rstd;
    for (int64_t c = 0; c < C; ++c) out.y[r * C + c] = xr[c] * rstd * w[c];
  }
  return out;
}

// y_c = x_c r w_c with r = (Σx²/C + eps)^(-1/2), so ∂r/∂x_k = -r³ x_k / C and
// ∂L/∂x_k = r w_k dy_k - (r³ x_k / C) Σ_c dy_c w_c x_c;  ∂L/∂w_c = Σ_rows dy_c x_c r.
RmsNormGrads rmsnorm_backward(const Vec& dy, const Vec& x, const Vec& w, int64_t rows, int64_t C, double eps) {
  const Vec rstd = rmsnorm(x, w, rows, C, eps).rstd;
  RmsNormGrads g{Vec(rows * C), Vec(C, 0.0)};
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = &x[r * C];
    const double* gr = &dy[r * C];
    const double q = rstd[r];
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += gr[c] * w[c] * xr[c];
    for (int64_t c = 0; c < C; ++c) {
      g.dx[r * C + c] = q * w[c] * gr[c] - q * q * q * xr[c] / C * s;
      g.dw[c] += gr[c] * xr[c] * q;
    }
  }
  return g;
}

}  // namespace vkm::ref
