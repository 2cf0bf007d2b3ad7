#include "engine/ops/sample.hpp"

#include <cmath>
#include <string>
#include <tuple>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

}  // namespace

int64_t sample_seen_words(int64_t vocab) { return (vocab + 31) / 32; }

float sample_uniform(uint32_t seed, uint32_t position) {
  return float(mix32(seed ^ mix32(position + 0x9e3779b9u)) >> 8) * (1.0f / 16777216.0f);
}

void sample(Program& p, const Tensor& logits, const SamplingParams& params, const Tensor& seen, const Tensor& seeds,
            const Tensor& positions, const Tensor& tokens) {
  const std::string what = "sample (logits " + logits.describe() + ", seen " + seen.describe() + ", seeds " +
                           seeds.describe() + ", positions " + positions.describe() + ", tokens " +
                           tokens.describe() + ")";
  if (!(params.temperature >= 0 && std::isfinite(params.temperature)))
    throw Error("sample: the temperature must be 0 (greedy) or positive, given " + std::to_string(params.temperature));
  if (params.top_k < 0) throw Error("sample: top_k must be 0 (off) or positive, given " + std::to_string(params.top_k));
  if (!(params.top_p > 0 && params.top_p <= 1))
    throw Error("sample: top_p must be in (0, 1], given " + std::to_string(params.top_p));
  if (!(params.repetition_penalty > 0 && std::isfinite(params.repetition_penalty)))
    throw Error("sample: the repetition penalty must be positive, given " + std::to_string(params.repetition_penalty));
  if (!logits || !seen || !seeds || !positions || !tokens) throw Error(what + ": a tensor is not allocated");
  if (logits.dtype != DType::f32 || logits.rank() != 2 || logits.numel() == 0)
    throw Error(what + ": logits must be non-empty f32 [B, V]");
  const int64_t B = logits.dim(0), V = logits.dim(1);
  if (V >= (int64_t(1) << 24)) throw Error(what + ": at most 2^24 - 1 tokens (counts are summed in fp32)");
  auto want = [&](const Tensor& t, DType type, const Shape& shape) { return t.dtype == type && t.shape == shape; };
  if (!want(seen, DType::u32, {B, sample_seen_words(V)}) || !want(seeds, DType::u32, {B}) ||
      !want(positions, DType::i32, {B}) || !want(tokens, DType::i32, {B}))
    throw Error(what + ": want seen u32 [B, sample_seen_words(V)], seeds u32 [B], positions and tokens i32 [B]");
  const Tensor* all[] = {&logits, &seen, &seeds, &positions, &tokens};
  for (size_t i = 0; i < 5; ++i)
    for (size_t j = i + 1; j < 5; ++j)
      if (all[i]->overlaps(*all[j])) throw Error(what + ": the tensors must not overlap");

  struct Push {
    uint32_t V, words, greedy, top_k;
    float temperature, top_p, penalty;
    uint32_t skip[5];
  };
  const bool greedy = params.temperature == 0;
  Push push{uint32_t(V), uint32_t(sample_seen_words(V)), greedy, uint32_t(std::min<int64_t>(params.top_k, V)),
            greedy ? 1.0f : params.temperature, params.top_p, params.repetition_penalty, {}};
  Context& ctx = p.context();
  std::vector<Binding> bindings{in(logits), inout(seen), in(seeds), inout(positions), out(tokens)};
  for (size_t i = 0; i < bindings.size(); ++i)
    std::tie(bindings[i].tensor, push.skip[i]) = aligned_span(ctx, bindings[i].tensor, 0, bindings[i].tensor.numel());
  const Kernel& k = ctx.kernel({"sample", 5, sizeof(Push), {kGroupSize}});
  p.dispatch(k, std::move(bindings), push, uint32_t(B), 1, 1, greedy ? "sample greedy" : "sample");
}

}  // namespace vkm::ops
