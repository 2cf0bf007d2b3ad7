#include "engine/ops/sample.hpp"

#include <algorithm>
#include <string>

#include "engine/error.hpp"
#include "tests/reference/sample.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// The state a decoder keeps for B sequences, in mapped memory so that the host reads it between steps.
struct State {
  Arena arena;
  Tensor logits, seen, seeds, positions, tokens;
  State(int64_t B, int64_t V) : arena(ctx(), "sample", MemoryKind::host, 1 << 20) {
    logits = arena.alloc(DType::f32, {B, V});
    seen = arena.alloc(DType::u32, {B, ops::sample_seen_words(V)});
    seeds = arena.alloc(DType::u32, {B});
    positions = arena.alloc(DType::i32, {B});
    tokens = arena.alloc(DType::i32, {B});
  }
  void record(Program& p, const ops::SamplingParams& params) const {
    ops::sample(p, logits, params, seen, seeds, positions, tokens);
  }
};

struct Case {
  const char* name;
  ops::SamplingParams params;
  float spread;  // logits uniform in [-spread, spread)
};

const Case kCases[] = {
    {"greedy", {0, 0, 1, 1}, 3},
    {"greedy_penalty", {0, 0, 1, 1.5f}, 3},
    {"temperature", {0.7f, 0, 1, 1}, 3},
    {"hot_flat", {1.5f, 0, 1, 1}, 1},
    {"top_k1", {1, 1, 1, 1}, 3},
    {"top_k5", {1, 5, 1, 1}, 2},
    {"top_k50", {0.8f, 50, 1, 1}, 2},
    {"top_p09", {1, 0, 0.9f, 1}, 3},
    {"top_p05", {1, 0, 0.5f, 1}, 6},
    {"top_p_tiny", {1, 0, 0.001f, 1}, 3},
    {"minimind_chat", {0.85f, 0, 0.85f, 1}, 4},
    {"everything", {0.9f, 40, 0.8f, 1.3f}, 3},
};

// Sixteen draws by one recorded program, resubmitted: each at the next position, each marking its token seen
// (which the penalty then lowers), for three sequences with their own seeds, against the reference given the
// same uniform number.
void check_draws(const Case& c, int64_t V) {
  SCOPED_TRACE(testing::Message() << c.name << ", V " << V);
  const int64_t B = 3;
  State s(B, V);
  std::vector<std::vector<bool>> seen(B, std::vector<bool>(V, false));
  std::vector<uint32_t> seen_words(s.seen.numel(), 0);
  for (int64_t b = 0; b < B; ++b)  // a "prompt" of a few tokens is seen from the start
    for (int64_t i = b; i < V; i += 97) {
      seen[b][i] = true;
      seen_words[b * ops::sample_seen_words(V) + i / 32] |= 1u << (i % 32);
    }
  const std::vector<uint32_t> seeds{7, 8, 123456789};
  std::vector<int32_t> positions{0, 41, 1000};
  ctx().write(s.seen, seen_words);
  ctx().write(s.seeds, seeds);
  ctx().write(s.positions, positions);
  Program p(ctx(), "sample");
  s.record(p, c.params);
  const ref::SampleParams rp{c.params.temperature, c.params.top_k, c.params.top_p, c.params.repetition_penalty};
  int ambiguous = 0;
  for (int draw = 0; draw < 16; ++draw) {
    const auto logits = test::random_floats(B * V, 100 + draw, -c.spread, c.spread);
    ctx().write(s.logits, logits);
    test::poison(s.tokens);
    ctx().wait(ctx().submit(p));
    const auto tokens = ctx().read<int32_t>(s.tokens);
    for (int64_t b = 0; b < B; ++b) {
      const ref::Vec row(logits.begin() + b * V, logits.begin() + (b + 1) * V);
      const double u = ops::sample_uniform(seeds[b], uint32_t(positions[b] + 1));
      const std::vector<int32_t> want = ref::sample_candidates(row, seen[b], rp, u, 2e-6);
      ambiguous += want.size() > 1;
      EXPECT_NE(std::find(want.begin(), want.end(), tokens[b]), want.end())
          << "draw " << draw << ", sequence " << b << ": got " << tokens[b] << ", want " << want[0];
      if (tokens[b] >= 0 && tokens[b] < V) seen[b][tokens[b]] = true;
      ++positions[b];
    }
    EXPECT_EQ(ctx().read<int32_t>(s.positions), positions) << "draw " << draw;
  }
  EXPECT_LE(ambiguous, 4) << "the reference leaves too many draws open to compare";
  // The seen bits the device kept are the reference's.
  const auto words = ctx().read<uint32_t>(s.seen);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < V; ++i)
      ASSERT_EQ(bool(words[b * ops::sample_seen_words(V) + i / 32] >> (i % 32) & 1), seen[b][i]) << b << ", " << i;
}

class SampleTest : public testing::TestWithParam<int> {};

TEST_P(SampleTest, MatchesReference) {
  for (int64_t V : {1, 7, 300, 6400, 7001}) check_draws(kCases[GetParam()], V);
}

INSTANTIATE_TEST_SUITE_P(Params, SampleTest, testing::Range(0, int(std::size(kCases))),
                         [](const auto& info) { return std::string(kCases[info.param].name); });

// The same seed gives the same tokens (the draw depends on nothing else); another seed gives others.
TEST(SampleSeeds, SameSeedSameSample) {
  const int64_t B = 2, V = 500;
  auto draws = [&](uint32_t seed) {
    State s(B, V);
    ctx().write(s.seen, std::vector<uint32_t>(s.seen.numel(), 0));
    ctx().write(s.seeds, std::vector<uint32_t>(B, seed));
    ctx().write(s.positions, std::vector<int32_t>{3, 3});
    ctx().write(s.logits, test::random_floats(B * V, 9, -1, 1));
    Program p(ctx(), "sample");
    s.record(p, {1, 0, 1, 1});
    std::vector<int32_t> out;
    for (int i = 0; i < 20; ++i) {
      ctx().wait(ctx().submit(p));
      for (int32_t t : ctx().read<int32_t>(s.tokens)) out.push_back(t);
    }
    return out;
  };
  const std::vector<int32_t> a = draws(42), b = draws(42), c = draws(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// The uniform numbers are spread over [0, 1): a coarse histogram of 40000 of them.
TEST(SampleSeeds, UniformIsUniform) {
  int buckets[10] = {};
  for (uint32_t seed = 0; seed < 40; ++seed)
    for (uint32_t pos = 0; pos < 1000; ++pos) {
      const float u = ops::sample_uniform(seed, pos);
      ASSERT_GE(u, 0.0f);
      ASSERT_LT(u, 1.0f);
      ++buckets[int(u * 10)];
    }
  for (int n : buckets) EXPECT_NEAR(n, 4000, 300);
}

TEST(SampleErrors, RejectsBadParamsAndShapes) {
  const int64_t B = 2, V = 40;
  State s(B, V);
  Program p(ctx(), "errors");
  auto with = [&](ops::SamplingParams params) { return [&, params] { s.record(p, params); }; };
  test::expect_error("temperature must be 0 (greedy) or positive", with({-1, 0, 1, 1}));
  test::expect_error("top_k must be 0 (off) or positive", with({1, -3, 1, 1}));
  test::expect_error("top_p must be in (0, 1]", with({1, 0, 0, 1}));
  test::expect_error("top_p must be in (0, 1]", with({1, 0, 1.5f, 1}));
  test::expect_error("repetition penalty must be positive", with({1, 0, 1, 0}));
  test::expect_error("want seen u32", [&] {
    ops::sample(p, s.logits, {}, s.arena.alloc(DType::u32, {B, 1}), s.seeds, s.positions, s.tokens);
  });
  test::expect_error("logits must be non-empty f32", [&] {
    ops::sample(p, s.logits.flat(), {}, s.seen, s.seeds, s.positions, s.tokens);
  });
  test::expect_error("must not overlap", [&] { ops::sample(p, s.logits, {}, s.seen, s.seeds, s.tokens, s.tokens); });
  EXPECT_NO_THROW(s.record(p, {}));
}

}  // namespace
}  // namespace vkm
