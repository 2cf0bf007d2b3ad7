#pragma once
// Reference generation in double precision: the whole model recomputed over a sequence (no cache), and
// greedy decoding by recomputing it for every new token.
#include <cstdint>
#include <vector>

#include "tests/reference/model.hpp"

namespace vkm::ref {

// logits [T, V] of one sequence of T = ids.size() tokens at positions 0..T-1 (s.B is taken as 1, s.T as T).
Vec sequence_logits(const ModelShape& s, const ModelWeights& w, const std::vector<int32_t>& ids);

// `count` tokens after `prompt`, each the argmax (first among equals) of the logits of the sequence so far,
// where the logits of tokens in the sequence are divided by `penalty` if positive, multiplied if negative (the
// repetition penalty, which keeps a random model from repeating one token forever).
std::vector<int32_t> greedy(const ModelShape& s, const ModelWeights& w, std::vector<int32_t> prompt, int64_t count,
                            double penalty = 1);

}  // namespace vkm::ref
