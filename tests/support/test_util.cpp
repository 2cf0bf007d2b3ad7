#include "tests/support/test_util.hpp"

#include <cstring>

#include "engine/instance.hpp"

namespace vkm::test {

Context& ctx() {
  static Context c;
  return c;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

double rel_l2(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    if (!std::isfinite(got[i]) && got[i] != want[i]) return std::numeric_limits<double>::infinity();
    if (std::isfinite(want[i])) {
      num += (got[i] - want[i]) * (got[i] - want[i]);
      den += want[i] * want[i];
    }
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

void poison(const Tensor& t) {
  std::vector<uint8_t> bytes(t.bytes(), 0xff);
  ctx().write(t, bytes.data(), bytes.size());
}

namespace {

// Fails the running test if the validation layer reported anything during it.
class ValidationListener : public testing::EmptyTestEventListener {
  uint64_t before_ = 0;
  void OnTestStart(const testing::TestInfo&) override { before_ = Instance::validation_messages(); }
  void OnTestEnd(const testing::TestInfo&) override {
    uint64_t n = Instance::validation_messages() - before_;
    if (n) ADD_FAILURE() << n << " Vulkan validation message(s) during this test (printed above)";
  }
};

}  // namespace
}  // namespace vkm::test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new vkm::test::ValidationListener);
  std::printf("device: %s (validation %s)\n", vkm::test::ctx().info().name.c_str(),
              vkm::test::ctx().validation() ? "on" : "off");
  return RUN_ALL_TESTS();
}
