// Host conversions between fp32 and the 16-bit float types, against the double reference rounding.
#include "engine/dtype.hpp"

#include <bit>
#include <cmath>

#include "tests/reference/rounding.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

std::vector<float> samples() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65520.0f, 1e6f, -1e-8f, 6.1e-5f, 5.96e-8f, 2.98e-8f,
                          3.0e-8f, 1.0009765625f /* 1 + 2^-10 */, 1.00048828125f /* tie: 1 + 2^-11 */,
                          1.00146484375f /* tie above an odd f16 */, 3.4e38f, INFINITY, -INFINITY};
  for (float x : test::random_floats(2000, 1, -4.0f, 4.0f)) v.push_back(x);
  for (float x : test::random_floats(2000, 2, -30.0f, 30.0f)) v.push_back(std::ldexp(1.0f, int(x)) * x);
  return v;
}

TEST(DType, F16MatchesReferenceRounding) {
  for (float x : samples()) {
    double want = ref::round_f16(x);
    double got = f16_to_f32(f32_to_f16(x));
    EXPECT_TRUE(got == want || (std::isnan(got) && std::isnan(want))) << x << " -> " << got << ", want " << want;
    EXPECT_EQ(std::signbit(got), std::signbit(want)) << x;
  }
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(DType, Bf16MatchesReferenceRounding) {
  for (float x : samples()) {
    double want = ref::round_bf16(x);
    double got = bf16_to_f32(f32_to_bf16(x));
    EXPECT_TRUE(got == want) << x << " -> " << got << ", want " << want;
  }
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, EveryF16PatternRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h);
  }
}

TEST(DType, FillPatterns) {
  EXPECT_EQ(fill_pattern(DType::f32, 1.0), 0x3f800000u);
  EXPECT_EQ(fill_pattern(DType::f16, 1.0), 0x3c00u);
  EXPECT_EQ(fill_pattern(DType::bf16, 1.0), 0x3f80u);
  EXPECT_EQ(fill_pattern(DType::i32, -1), 0xffffffffu);
  EXPECT_EQ(fill_pattern(DType::u32, 7), 7u);
}

}  // namespace
}  // namespace vkm
