#include "tests/reference/attention.hpp"

#include <algorithm>
#include <cmath>

namespace vkm::ref {

namespace {

// Indexing of [B,T,H,D] tensors.
struct Rows {
  const AttentionShape& s;
  int64_t H;
  int64_t at(int64_t b, int64_t t, int64_t h) const { return ((b * s.T + t) * H + h) * s.D; }
};

double dot(const Vec& x, int64_t xi, const Vec& y, int64_t yi, int64_t n) {
  double r = 0;
  for (int64_t d = 0; d < n; ++d) r += x[xi + d] * y[yi + d];
  return r;
}

int64_t length_of(const AttentionShape& s, const std::vector<int32_t>& lengths, int64_t b) {
  return lengths.empty() ? s.T : std::clamp<int64_t>(lengths[b], 0, s.T);
}

// The softmax matrix of head h of sequence b, P[i*T + j] (zero where masked), and each row's lse.
void probabilities(const AttentionShape& s, const Vec& q, const Vec& k, int64_t b, int64_t h, int64_t len, Vec& P,
                   Vec& lse) {
  const Rows qr{s, s.Hq}, kr{s, s.Hkv};
  const int64_t g = h / (s.Hq / s.Hkv);
  const double scale = 1.0 / std::sqrt(double(s.D));
  P.assign(s.T * s.T, 0.0);
  lse.assign(s.T, 0.0);
  for (int64_t i = 0; i < len; ++i) {
    double* row = &P[i * s.T];
    double max = -INFINITY;
    for (int64_t j = 0; j <= i; ++j) {
      row[j] = scale * dot(q, qr.at(b, i, h), k, kr.at(b, j, g), s.D);
      max = std::max(max, row[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j <= i; ++j) sum += std::exp(row[j] - max);
    for (int64_t j = 0; j <= i; ++j) row[j] = std::exp(row[j] - max) / sum;
    lse[i] = max + std::log(sum);
  }
}

}  // namespace

AttentionForward attention_forward(const AttentionShape& s, const Vec& q, const Vec& k, const Vec& v,
                                   const std::vector<int32_t>& lengths) {
  const Rows qr{s, s.Hq}, kr{s, s.Hkv};
  AttentionForward f{Vec(s.B * s.T * s.Hq * s.D, 0.0), Vec(s.B * s.Hq * s.T, 0.0)};
  Vec P, lse;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h) {
      const int64_t len = length_of(s, lengths, b), g = h / (s.Hq / s.Hkv);
      probabilities(s, q, k, b, h, len, P, lse);
      for (int64_t i = 0; i < len; ++i) {
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t d = 0; d < s.D; ++d) f.out[qr.at(b, i, h) + d] += P[i * s.T + j] * v[kr.at(b, j, g) + d];
        f.lse[(b * s.Hq + h) * s.T + i] = lse[i];
      }
    }
  return f;
}

// With O = P·V and P = softmax(S): dV = Pᵀ·dO, dP = dO·Vᵀ, dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij'), and
// S = scale Q·Kᵀ gives dQ = scale dS·K, dK = scale dSᵀ·Q.
AttentionGrads attention_backward(const AttentionShape& s, const Vec& q, const Vec& k, const Vec& v, const Vec& dout,
                                  const std::vector<int32_t>& lengths) {
  const Rows qr{s, s.Hq}, kr{s, s.Hkv};
  const double scale = 1.0 / std::sqrt(double(s.D));
  AttentionGrads g{Vec(q.size(), 0.0), Vec(k.size(), 0.0), Vec(v.size(), 0.0)};
  Vec P, lse, dP(s.T);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h) {
      const int64_t len = length_of(s, lengths, b), kv = h / (s.Hq / s.Hkv);
      probabilities(s, q, k, b, h, len, P, lse);
      for (int64_t i = 0; i < len; ++i) {
        const double* p = &P[i * s.T];
        double softmax_part = 0;
        for (int64_t j = 0; j <= i; ++j) {
          dP[j] = dot(dout, qr.at(b, i, h), v, kr.at(b, j, kv), s.D);
          softmax_part += p[j] * dP[j];
        }
        for (int64_t j = 0; j <= i; ++j) {
          const double dS = p[j] * (dP[j] - softmax_part);
          for (int64_t d = 0; d < s.D; ++d) {
            g.dv[kr.at(b, j, kv) + d] += p[j] * dout[qr.at(b, i, h) + d];
            g.dq[qr.at(b, i, h) + d] += scale * dS * k[kr.at(b, j, kv) + d];
            g.dk[kr.at(b, j, kv) + d] += scale * dS * q[qr.at(b, i, h) + d];
          }
        }
      }
    }
  return g;
}

}  // namespace vkm::ref
