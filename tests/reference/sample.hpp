#pragma once
// Reference token sampling in double precision, written from Hugging Face generate()'s definitions: a
// repetition penalty on the seen tokens, temperature, top-k (ties at the k-th kept), top-p (the fewest most
// likely tokens reaching p, after top-k, ties kept), then the first token in vocabulary order whose running
// sum of probabilities exceeds u times the kept total. Greedy (temperature 0): the largest, smallest id
// among equals.
#include <cstdint>
#include <vector>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

struct SampleParams {
  double temperature;  // 0: greedy
  int64_t top_k;       // 0: all
  double top_p;        // 1: all
  double penalty;      // 1: none
};

// The tokens the draw gives for one row of logits [V] with `seen` tokens, for every uniform number within tol
// of u and top-p within tol of p (tol relative to the kept mass): where the device's fp32 sums may land on
// either side of a boundary. With tol 0, or almost always, one token.
std::vector<int32_t> sample_candidates(const Vec& logits, const std::vector<bool>& seen, const SampleParams& p,
                                       double u, double tol);

}  // namespace vkm::ref
