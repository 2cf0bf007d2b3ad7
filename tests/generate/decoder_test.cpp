// The KV-cached decoder against recomputation: on the device (a fresh prefill of the whole sequence) and in
// double precision (tests/reference/generate.hpp).
#include "model/generate/decoder.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "model/io/model_files.hpp"
#include "tests/generate/tiny_model.hpp"
#include "tests/reference/generate.hpp"

namespace vkm {
namespace {

using model::Decoder;
using model::DecoderOptions;
using test::ctx;
using test::TinyModel;

constexpr double kTolF32 = 1e-5, kTolF16 = 5e-3;

DecoderOptions greedy_options(int64_t batch = 1, int64_t chunk = 128, DType weights = DType::f32) {
  DecoderOptions o;
  o.batch = batch;
  o.prefill_chunk = chunk;
  o.weights = weights;
  o.sampling.temperature = 0;
  return o;
}

// The guarantees that hold whatever the weights' storage: f32, and f16 (where the device has 16-bit support).
class DecoderWeights : public testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!ops::has_storage(ctx(), GetParam())) GTEST_SKIP() << "no 16-bit support on " << ctx().info().name;
  }
  DType weights() const { return GetParam(); }
  // f16 weights and linear inputs: the logits are the double reference's (f32 weights) within f16's rounding
  // (1e-3 measured).
  double reference_tol() const { return weights() == DType::f32 ? kTolF32 : kTolF16; }
  // Between logits of the same products summed in another order (matvec in steps and short prefills, the tiled
  // matmul past 16 rows): with f16, a last-bit difference can move an activation across an f16 rounding
  // boundary, one unit (2^-11) of its value, and that spreads (up to 6.7e-4 measured).
  double paths_tol() const { return weights() == DType::f32 ? kTolF32 : 2e-3; }
};

ref::Vec row(const ref::Vec& logits, int64_t r, int64_t V) {
  return ref::Vec(logits.begin() + r * V, logits.begin() + (r + 1) * V);
}

// The logits of each decoding step equal those of a prefill of the whole sequence so far (computed afresh, no
// cache reused) at the same position, and the double reference's. With f16 weights too: steps (matvec) and
// prefill (the tiled matmul) multiply the same f16 values, and differ only in the order of their fp32 sums.
TEST_P(DecoderWeights, StepLogitsEqualPrefillLogits) {
  const TinyModel m;
  const int64_t V = m.config.vocab;
  const std::vector<int32_t> prompt = test::random_ids(9, V, 1);
  Decoder d(ctx(), m.layout, m.params, greedy_options(1, 128, weights()));
  Decoder fresh(ctx(), m.layout, m.params, greedy_options(1, 128, weights()));
  std::vector<int32_t> seq = prompt;
  seq.push_back(d.prefill({prompt})[0]);
  for (int step = 0; step < 12; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    const int32_t next = d.step()[0];
    const ref::Vec got = test::read_values(d.logits());
    fresh.reset();
    EXPECT_EQ(fresh.prefill({seq})[0], next);
    EXPECT_LE(test::rel_l2(got, test::read_values(fresh.logits())), paths_tol()) << "decode vs prefill";
    const ref::Vec want = row(ref::sequence_logits(m.shape(), m.weights(), seq), int64_t(seq.size()) - 1, V);
    EXPECT_LE(test::rel_l2(got, want), reference_tol()) << "decode vs reference";
    seq.push_back(next);
  }
  EXPECT_EQ(d.length(0), int64_t(seq.size()) - 1);  // the last token is sampled, not yet embedded
}

// 64 greedy tokens with the cache are exactly the tokens of recomputing the whole sequence for each one, on the
// device and in double precision (f32 weights; f16 ones, rounded with the linear layers' inputs, give the same
// tokens on these models: their logits are 1e-3 from the reference's, less than the margins here). Returns them.
std::vector<int32_t> expect_greedy_equals_recomputing(const TinyModel& m, const std::vector<int32_t>& prompt,
                                                      float penalty, DType weights = DType::f32) {
  SCOPED_TRACE(testing::Message() << "repetition penalty " << penalty << ", " << dtype_name(weights) << " weights");
  DecoderOptions o = greedy_options(1, 128, weights);
  o.sampling.repetition_penalty = penalty;
  Decoder d(ctx(), m.layout, m.params, o);
  std::vector<int32_t> cached{d.prefill({prompt})[0]};
  while (cached.size() < 64) cached.push_back(d.step()[0]);

  Decoder again(ctx(), m.layout, m.params, o);
  std::vector<int32_t> seq = prompt, recomputed;
  for (int i = 0; i < 64; ++i) {
    again.reset();
    recomputed.push_back(again.prefill({seq})[0]);
    seq.push_back(recomputed.back());
  }
  EXPECT_EQ(cached, recomputed);
  EXPECT_EQ(cached, ref::greedy(m.shape(), m.weights(), prompt, 64, penalty));
  return cached;
}

// Plain greedy, and with Hugging Face's repetition penalty.
TEST_P(DecoderWeights, GreedyWithCacheEqualsRecomputing) {
  const TinyModel m;
  const std::vector<int32_t> prompt = test::random_ids(7, m.config.vocab, 2);
  for (float penalty : {1.0f, 1.3f}) {
    const std::vector<int32_t> tokens = expect_greedy_equals_recomputing(m, prompt, penalty, weights());
    EXPECT_GT(std::set<int32_t>(tokens.begin(), tokens.end()).size(), 10u) << "a degenerate sequence proves little";
  }
}

// The same on a trained model (its logits are peaked where a random model's are flat), when one is at hand:
// the folder VKMIND_TEST_MODEL names, else tests/data/model, with its tokenizer.json. tests/data/model is stored
// in f16, so f16 weights hold its values exactly: only the rounding of the linear layers' inputs differs, and
// the tokens are the f32 decoder's.
TEST(DecoderTrained, GreedyWithCacheEqualsRecomputing) {
  const char* env = std::getenv("VKMIND_TEST_MODEL");
  const std::filesystem::path folder = env ? std::filesystem::path(env) : test::data_dir() / "model";
  if (!std::filesystem::exists(folder)) GTEST_SKIP() << "no trained model at " << folder;
  io::ModelFiles files = io::load_model(folder);
  const TinyModel m(files.config, std::move(files.params));
  const tok::Tokenizer t = io::load_model_tokenizer(folder);
  const std::vector<int32_t> prompt = t.encode(tok::apply_chat_template({{"user", "Write a short poem."}}, true));
  const std::vector<int32_t> f32 = expect_greedy_equals_recomputing(m, prompt, 1.0f);
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "no 16-bit support on " << ctx().info().name;
  EXPECT_EQ(expect_greedy_equals_recomputing(m, prompt, 1.0f, DType::f16), f32);
}

// Prefill in chunks (a power of two for the remainder, then whole chunks; the last chunk samples) gives the
// logits of one pass.
TEST(Decoder, ChunkedPrefillEqualsOnePass) {
  const TinyModel m;
  const std::vector<int32_t> prompt = test::random_ids(29, m.config.vocab, 3);
  Decoder whole(ctx(), m.layout, m.params, greedy_options());
  whole.prefill({prompt});
  for (int64_t chunk : {1, 4, 8, 16}) {
    Decoder chunked(ctx(), m.layout, m.params, greedy_options(1, chunk));
    chunked.prefill({prompt});
    EXPECT_LE(test::rel_l2(test::read_values(chunked.logits()), test::read_values(whole.logits())), kTolF32)
        << "chunk " << chunk;
  }
}

// A conversation's next turn appended to the cache (prefill after decoding) equals prefilling all of it.
TEST(Decoder, AppendingEqualsPrefillingEverything) {
  const TinyModel m;
  const int64_t V = m.config.vocab;
  const std::vector<int32_t> first = test::random_ids(11, V, 4), second = test::random_ids(6, V, 5);
  Decoder d(ctx(), m.layout, m.params, greedy_options(1, 4));
  std::vector<int32_t> all = first;
  all.push_back(d.prefill({first})[0]);
  for (int i = 0; i < 5; ++i) all.push_back(d.step()[0]);
  // The last sampled token is not in the cache yet: the next turn starts with it.
  std::vector<int32_t> turn{all.back()};
  turn.insert(turn.end(), second.begin(), second.end());
  all.insert(all.end(), second.begin(), second.end());
  const int32_t next = d.prefill({turn})[0];
  Decoder fresh(ctx(), m.layout, m.params, greedy_options());
  EXPECT_EQ(fresh.prefill({all})[0], next);
  EXPECT_LE(test::rel_l2(test::read_values(d.logits()), test::read_values(fresh.logits())), kTolF32);
  EXPECT_EQ(d.length(0), int64_t(all.size()));
}

// Prompts of different lengths decoded side by side (the shorter ones padded in front, across chunk
// boundaries) give each one's tokens and logits alone: greedy, and sampled with a seed per prompt.
TEST_P(DecoderWeights, BatchEqualsEachAlone) {
  const TinyModel m;
  const int64_t V = m.config.vocab;
  const std::vector<std::vector<int32_t>> prompts{test::random_ids(5, V, 6), test::random_ids(17, V, 7),
                                                  test::random_ids(9, V, 8)};
  for (float temperature : {0.0f, 0.9f}) {
    SCOPED_TRACE(testing::Message() << "temperature " << temperature);
    DecoderOptions o = greedy_options(3, 8, weights());
    o.sampling = {temperature, 20, 0.9f, 1.1f};
    Decoder batch(ctx(), m.layout, m.params, o);
    for (int64_t b = 0; b < 3; ++b) batch.set_seed(b, uint32_t(100 + b));
    std::vector<std::vector<int32_t>> got(3);
    std::vector<ref::Vec> got_logits(3);
    auto take = [&](const std::vector<int32_t>& next) {
      const ref::Vec logits = test::read_values(batch.logits());
      for (size_t b = 0; b < 3; ++b) {
        got[b].push_back(next[b]);
        got_logits[b] = row(logits, int64_t(b), V);
      }
    };
    take(batch.prefill(prompts));
    for (int i = 0; i < 19; ++i) take(batch.step());
    o.batch = 1;
    for (size_t b = 0; b < 3; ++b) {
      Decoder alone(ctx(), m.layout, m.params, o);
      alone.set_seed(0, uint32_t(100 + b));
      std::vector<int32_t> want{alone.prefill({prompts[b]})[0]};
      for (int i = 0; i < 19; ++i) want.push_back(alone.step()[0]);
      EXPECT_EQ(got[b], want) << "prompt " << b;
      EXPECT_LE(test::rel_l2(got_logits[b], test::read_values(alone.logits())), paths_tol()) << "prompt " << b;
    }
  }
}

// Past 16 sequences the linear layers take the tiled matmul, and prefill chunks shrink to 512 rows in all:
// still each prompt's own tokens.
TEST_P(DecoderWeights, WideBatchEqualsEachAlone) {
  const TinyModel m;
  const int64_t B = 40;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < B; ++b) prompts.push_back(test::random_ids(size_t(3 + b % 30), m.config.vocab, uint32_t(20 + b)));
  Decoder batch(ctx(), m.layout, m.params, greedy_options(B, 128, weights()));
  std::vector<std::vector<int32_t>> got(B);
  for (int i = 0; i < 8; ++i) {
    const std::vector<int32_t> next = i == 0 ? batch.prefill(prompts) : batch.step();
    for (int64_t b = 0; b < B; ++b) got[size_t(b)].push_back(next[size_t(b)]);
  }
  Decoder alone(ctx(), m.layout, m.params, greedy_options(1, 128, weights()));
  for (int64_t b : {0, 26, 39}) {
    alone.reset();
    std::vector<int32_t> want{alone.prefill({prompts[size_t(b)]})[0]};
    while (want.size() < 8) want.push_back(alone.step()[0]);
    EXPECT_EQ(got[size_t(b)], want) << "prompt " << b;
  }
}

// The same seed gives the same tokens; another seed, others.
TEST_P(DecoderWeights, SameSeedSameSample) {
  const TinyModel m;
  const std::vector<int32_t> prompt = test::random_ids(6, m.config.vocab, 9);
  auto sample = [&](uint32_t seed) {
    DecoderOptions o;
    o.weights = weights();
    o.sampling = {0.9f, 0, 0.9f, 1.0f};
    Decoder d(ctx(), m.layout, m.params, o);
    d.set_seed(0, seed);
    std::vector<int32_t> out{d.prefill({prompt})[0]};
    while (out.size() < 30) out.push_back(d.step()[0]);
    return out;
  };
  const std::vector<int32_t> a = sample(5);
  EXPECT_EQ(a, sample(5));
  EXPECT_NE(a, sample(6));
}

// An f16 cache follows the f32 one within f16 rounding.
TEST(Decoder, F16CacheFollowsF32) {
  const TinyModel m;
  const std::vector<int32_t> prompt = test::random_ids(13, m.config.vocab, 10);
  DecoderOptions o = greedy_options();
  Decoder full(ctx(), m.layout, m.params, o);
  o.cache = DType::f16;
  Decoder half(ctx(), m.layout, m.params, o);
  EXPECT_EQ(half.cache_bytes() * 2, full.cache_bytes());
  std::vector<int32_t> seq = prompt;
  full.prefill({seq});
  half.prefill({seq});
  for (int i = 0; i < 8; ++i) {
    EXPECT_LE(test::rel_l2(test::read_values(half.logits()), test::read_values(full.logits())), kTolF16) << i;
    if (full.step() != half.step()) break;  // a near tie may part them; the logits so far were compared
  }
}

// f16 weights are read as they are from f16 params (asked for, or by default: the params' own storage), and
// from the decoder's own copy of f32 ones: the same bits either way, half the bytes of f32 weights (the norms
// stay f32). f16 params with f32 weights equal f32 params holding the same values.
TEST(Decoder, WeightsFromF16Params) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "no 16-bit support on " << ctx().info().name;
  const TinyModel m;
  Arena arena(ctx(), "f16 params");
  const Tensor params16 = arena.alloc(DType::f16, {m.layout.total_elems()});
  test::write_values(params16, m.values);
  const std::vector<int32_t> prompt = test::random_ids(21, m.config.vocab, 12);
  auto logits = [&](const Tensor& params, std::optional<DType> weights) {
    DecoderOptions o = greedy_options(1, 8);
    o.weights = weights;
    Decoder d(ctx(), m.layout, params, o);
    d.prefill({prompt});
    for (int i = 0; i < 3; ++i) d.step();
    return std::pair{test::read_values(d.logits()), d.weight_bytes()};
  };
  const auto [f32, f32_bytes] = logits(m.params, DType::f32);
  const auto [copied, copied_bytes] = logits(m.params, DType::f16);
  const auto [direct, direct_bytes] = logits(params16, DType::f16);
  EXPECT_EQ(direct, copied);
  EXPECT_EQ(direct_bytes, copied_bytes);
  EXPECT_EQ(logits(params16, std::nullopt).first, direct);
  EXPECT_EQ(logits(m.params, std::nullopt).first, f32);
  const uint64_t norms = uint64_t(2 * m.config.layers + 1) * uint64_t(m.config.hidden) * 4;
  EXPECT_EQ(direct_bytes - norms, (f32_bytes - norms) / 2);
  EXPECT_LE(test::rel_l2(direct, f32), kTolF16);

  const TinyModel rounded(m.config, [&] {
    std::vector<float> v = m.values;
    for (float& x : v) x = f16_to_f32(f32_to_f16(x));
    return v;
  }());
  EXPECT_EQ(logits(params16, DType::f32).first, logits(rounded.params, DType::f32).first);
}

// The decoding step reports every dispatch's GPU time, attention included.
TEST(Decoder, ProfiledStep) {
  const TinyModel m;
  Decoder d(ctx(), m.layout, m.params, greedy_options());
  d.prefill({test::random_ids(4, m.config.vocab, 11)});
  const std::vector<DispatchTiming> timings = d.profile_step();
  if (ctx().timestamp_bits() == 0) GTEST_SKIP() << "no timestamps on this device";
  ASSERT_FALSE(timings.empty());
  EXPECT_TRUE(std::ranges::any_of(timings, [](const DispatchTiming& t) { return t.label.starts_with("kv_attention"); }));
  EXPECT_EQ(d.length(0), 5);
}

// f16 weights on a device without 16-bit support: refused, naming the device and what it lacks.
TEST(DecoderErrors, F16WeightsNeed16BitSupport) {
  DeviceInfo d;
  d.name = "no-fp16 device";
  d.storage_16bit = d.shader_int16 = true;
  EXPECT_NO_THROW(model::check_weights_storage(d, DType::f32));
  test::expect_error("f16 weights need storageBuffer16BitAccess, shaderInt16 and shaderFloat16, which device "
                     "'no-fp16 device' lacks; use f32 weights",
                     [&] { model::check_weights_storage(d, DType::f16); });
  d.shader_float16 = true;
  EXPECT_NO_THROW(model::check_weights_storage(d, DType::f16));
}

INSTANTIATE_TEST_SUITE_P(Storage, DecoderWeights, testing::Values(DType::f32, DType::f16),
                         testing::PrintToStringParamName());

TEST(DecoderErrors, ClearMessages) {
  const TinyModel m;
  Decoder d(ctx(), m.layout, m.params, greedy_options(2));
  const std::vector<int32_t> ok{1, 2, 3};
  test::expect_error("prefill takes one token list per sequence, 2, given 1", [&] { d.prefill({ok}); });
  test::expect_error("sequence 1: nothing to prefill (an empty prompt)", [&] { d.prefill({ok, {}}); });
  test::expect_error("token id 300 is outside the model's vocabulary of 300", [&] { d.prefill({ok, {300}}); });
  test::expect_error("token id -1", [&] { d.prefill({{-1}, ok}); });
  test::expect_error("sequence 0 would hold 257 tokens, more than the context of 256",
                     [&] { d.prefill({std::vector<int32_t>(257, 1), ok}); });
  auto with = [&](DecoderOptions o) { return [&, o] { Decoder bad(ctx(), m.layout, m.params, o); }; };
  DecoderOptions o;
  o.context = 257;
  test::expect_error("a context of 257 positions exceeds the model's max_position_embeddings 256", with(o));
  o = {};
  o.cache = DType::bf16;
  test::expect_error("the cache must be f32 or f16", with(o));
  o = {};
  o.batch = 0;
  test::expect_error("the batch and the prefill chunk must be positive", with(o));
  o = {};
  o.batch = 1 << 20;
  test::expect_error("use a shorter context or a smaller batch", with(o));
  test::expect_error("must be the flat f32 (or f16) buffer",
                     [&] { Decoder bad(ctx(), m.layout, m.params.view(0, {10})); });
  Arena arena(ctx(), "bf16 params");
  const Tensor bf16 = arena.alloc(DType::bf16, {m.layout.total_elems()});
  test::expect_error("must be the flat f32 (or f16) buffer", [&] { Decoder bad(ctx(), m.layout, bf16); });
  o = {};
  o.weights = DType::bf16;
  test::expect_error("the weights must be f32 or f16, not bf16", with(o));
  // After the errors the decoder still works.
  EXPECT_EQ(d.prefill({ok, ok}).size(), 2u);
}

}  // namespace
}  // namespace vkm
