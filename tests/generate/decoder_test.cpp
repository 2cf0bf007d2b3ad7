// The KV-cached decoder against recomputation: on the device (a fresh prefill of the whole sequence) and in
// double precision (tests/reference/generate.hpp).
#include "model/generate/decoder.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "engine/error.hpp"
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

DecoderOptions greedy_options(int64_t batch = 1, int64_t chunk = 128) {
  DecoderOptions o;
  o.batch = batch;
  o.prefill_chunk = chunk;
  o.sampling.temperature = 0;
  return o;
}

ref::Vec row(const ref::Vec& logits, int64_t r, int64_t V) {
  return ref::Vec(logits.begin() + r * V, logits.begin() + (r + 1) * V);
}

// The logits of each decoding step equal those of a prefill of the whole sequence so far (computed afresh, no
// cache reused) at the same position, and the double reference's.
TEST(Decoder, StepLogitsEqualPrefillLogits) {
  const TinyModel m;
  const int64_t V = m.config.vocab;
  const std::vector<int32_t> prompt = test::random_ids(9, V, 1);
  Decoder d(ctx(), m.layout, m.params, greedy_options());
  Decoder fresh(ctx(), m.layout, m.params, greedy_options());
  std::vector<int32_t> seq = prompt;
  seq.push_back(d.prefill({prompt})[0]);
  for (int step = 0; step < 12; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    const int32_t next = d.step()[0];
    const ref::Vec got = test::read_values(d.logits());
    fresh.reset();
    EXPECT_EQ(fresh.prefill({seq})[0], next);
    EXPECT_LE(test::rel_l2(got, test::read_values(fresh.logits())), kTolF32) << "decode vs prefill";
    const ref::Vec want = row(ref::sequence_logits(m.shape(), m.weights(), seq), int64_t(seq.size()) - 1, V);
    EXPECT_LE(test::rel_l2(got, want), kTolF32) << "decode vs reference";
    seq.push_back(next);
  }
  EXPECT_EQ(d.length(0), int64_t(seq.size()) - 1);  // the last token is sampled, not yet embedded
}

// 64 greedy tokens with the cache are exactly the tokens of recomputing the whole sequence for each one, on the
// device and in double precision. Returns them.
std::vector<int32_t> expect_greedy_equals_recomputing(const TinyModel& m, const std::vector<int32_t>& prompt,
                                                      float penalty) {
  SCOPED_TRACE(testing::Message() << "repetition penalty " << penalty);
  DecoderOptions o = greedy_options();
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
TEST(Decoder, GreedyWithCacheEqualsRecomputing) {
  const TinyModel m;
  const std::vector<int32_t> prompt = test::random_ids(7, m.config.vocab, 2);
  for (float penalty : {1.0f, 1.3f}) {
    const std::vector<int32_t> tokens = expect_greedy_equals_recomputing(m, prompt, penalty);
    EXPECT_GT(std::set<int32_t>(tokens.begin(), tokens.end()).size(), 10u) << "a degenerate sequence proves little";
  }
}

// The same on a trained model (its logits are peaked where a random model's are flat), when one is at hand:
// the folder VKMIND_TEST_MODEL names, else tests/data/model, with its tokenizer.json.
TEST(DecoderTrained, GreedyWithCacheEqualsRecomputing) {
  const char* env = std::getenv("VKMIND_TEST_MODEL");
  const std::filesystem::path folder = env ? std::filesystem::path(env) : test::data_dir() / "model";
  if (!std::filesystem::exists(folder)) GTEST_SKIP() << "no trained model at " << folder;
  io::ModelFiles files = io::load_model(folder);
  const TinyModel m(files.config, std::move(files.params));
  const tok::Tokenizer t = io::load_model_tokenizer(folder);
  const std::vector<int32_t> prompt = t.encode(tok::apply_chat_template({{"user", "Write a short poem."}}, true));
  expect_greedy_equals_recomputing(m, prompt, 1.0f);
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
TEST(Decoder, BatchEqualsEachAlone) {
  const TinyModel m;
  const int64_t V = m.config.vocab;
  const std::vector<std::vector<int32_t>> prompts{test::random_ids(5, V, 6), test::random_ids(17, V, 7),
                                                  test::random_ids(9, V, 8)};
  for (float temperature : {0.0f, 0.9f}) {
    SCOPED_TRACE(testing::Message() << "temperature " << temperature);
    DecoderOptions o = greedy_options(3, 8);
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
      EXPECT_LE(test::rel_l2(got_logits[b], test::read_values(alone.logits())), kTolF32) << "prompt " << b;
    }
  }
}

// Past 16 sequences the linear layers take the tiled matmul, and prefill chunks shrink to 512 rows in all:
// still each prompt's own tokens.
TEST(Decoder, WideBatchEqualsEachAlone) {
  const TinyModel m;
  const int64_t B = 40;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < B; ++b) prompts.push_back(test::random_ids(size_t(3 + b % 30), m.config.vocab, uint32_t(20 + b)));
  Decoder batch(ctx(), m.layout, m.params, greedy_options(B));
  std::vector<std::vector<int32_t>> got(B);
  for (int i = 0; i < 8; ++i) {
    const std::vector<int32_t> next = i == 0 ? batch.prefill(prompts) : batch.step();
    for (int64_t b = 0; b < B; ++b) got[size_t(b)].push_back(next[size_t(b)]);
  }
  Decoder alone(ctx(), m.layout, m.params, greedy_options());
  for (int64_t b : {0, 26, 39}) {
    alone.reset();
    std::vector<int32_t> want{alone.prefill({prompts[size_t(b)]})[0]};
    while (want.size() < 8) want.push_back(alone.step()[0]);
    EXPECT_EQ(got[size_t(b)], want) << "prompt " << b;
  }
}

// The same seed gives the same tokens; another seed, others.
TEST(Decoder, SameSeedSameSample) {
  const TinyModel m;
  const std::vector<int32_t> prompt = test::random_ids(6, m.config.vocab, 9);
  auto sample = [&](uint32_t seed) {
    DecoderOptions o;
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
  test::expect_error("must be the flat f32 buffer", [&] { Decoder bad(ctx(), m.layout, m.params.view(0, {10})); });
  // After the errors the decoder still works.
  EXPECT_EQ(d.prefill({ok, ok}).size(), 2u);
}

}  // namespace
}  // namespace vkm
