#include "tests/reference/kv_cache.hpp"

#include <algorithm>
#include <cmath>

namespace vkm::ref {

void kv_append(const KvShape& s, const Vec& k, const Vec& v, const std::vector<int32_t>& positions, Vec& k_cache,
               Vec& v_cache) {
  const int64_t W = s.Hkv * s.D;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t) {
      const int64_t pos = positions[b * s.T + t];
      if (pos < 0 || pos >= s.S) continue;
      std::copy_n(k.begin() + (b * s.T + t) * W, W, k_cache.begin() + (b * s.S + pos) * W);
      std::copy_n(v.begin() + (b * s.T + t) * W, W, v_cache.begin() + (b * s.S + pos) * W);
    }
}

Vec kv_attention(const KvShape& s, const Vec& q, const Vec& k_cache, const Vec& v_cache,
                 const std::vector<int32_t>& positions) {
  Vec out(s.B * s.T * s.Hq * s.D, 0.0);
  const double scale = 1.0 / std::sqrt(double(s.D));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t) {
      const int64_t last = std::min<int64_t>(positions[b * s.T + t], s.S - 1);
      if (last < 0) continue;  // no keys: zeros
      for (int64_t h = 0; h < s.Hq; ++h) {
        const int64_t g = h / (s.Hq / s.Hkv);
        const double* qi = &q[((b * s.T + t) * s.Hq + h) * s.D];
        Vec score(last + 1);
        double top = -INFINITY;
        for (int64_t j = 0; j <= last; ++j) {
          const double* kj = &k_cache[((b * s.S + j) * s.Hkv + g) * s.D];
          double dot = 0;
          for (int64_t d = 0; d < s.D; ++d) dot += qi[d] * kj[d];
          score[j] = dot * scale;
          top = std::max(top, score[j]);
        }
        double sum = 0;
        for (double& x : score) sum += x = std::exp(x - top);
        double* o = &out[((b * s.T + t) * s.Hq + h) * s.D];
        for (int64_t j = 0; j <= last; ++j)
          for (int64_t d = 0; d < s.D; ++d) o[d] += score[j] / sum * v_cache[((b * s.S + j) * s.Hkv + g) * s.D + d];
      }
    }
  return out;
}

}  // namespace vkm::ref
