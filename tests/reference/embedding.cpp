#include "tests/reference/embedding.hpp"

#include <cstddef>

namespace vkm::ref {

namespace {
bool in_vocab(int32_t id, int64_t V) { return id >= 0 && id < V; }
}  // namespace

Vec embedding(const Vec& table, const std::vector<int32_t>& ids, int64_t V, int64_t C) {
  Vec out(ids.size() * C, 0.0);
  for (size_t r = 0; r < ids.size(); ++r)
    if (in_vocab(ids[r], V))
      for (int64_t c = 0; c < C; ++c) out[r * C + c] = table[ids[r] * C + c];
  return out;
}

Vec embedding_backward(const std::vector<int32_t>& ids, const Vec& dout, int64_t V, int64_t C) {
  Vec dtable(V * C, 0.0);
  for (size_t r = 0; r < ids.size(); ++r)
    if (in_vocab(ids[r], V))
      for (int64_t c = 0; c < C; ++c) dtable[ids[r] * C + c] += dout[r * C + c];
  return dtable;
}

}  // namespace vkm::ref
