// Device choice and the probe of what it supports.
#include "engine/instance.hpp"

#include "engine/error.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

TEST(Instance, SelectsByIndexNameAndRank) {
  Instance inst;
  ASSERT_FALSE(inst.devices().empty());
  const DeviceInfo& first = inst.devices()[0];
  EXPECT_EQ(&inst.select("0"), &first);
  EXPECT_EQ(&inst.select(first.name.substr(0, 4)), &first);
  EXPECT_THROW(inst.select("no such device anywhere"), Error);
  EXPECT_THROW(inst.select("999"), Error);
  const DeviceInfo& best = inst.select(std::nullopt);
  for (auto& d : inst.devices()) EXPECT_LE(device_rank(best.vk_type), device_rank(d.vk_type));
}

TEST(Instance, ProbeReportsTheLimitsKernelsRelyOn) {
  const DeviceInfo& d = test::ctx().info();
  EXPECT_GE(d.api_version, uint32_t(VK_API_VERSION_1_2));
  EXPECT_GE(d.max_storage_buffer_range, 1u << 27);
  EXPECT_GE(d.max_shared_memory, 16384u);
  EXPECT_GE(d.max_workgroup_invocations, 128u);
  EXPECT_GE(d.max_push_constants, 128u);
  EXPECT_GT(d.subgroup_size, 0u);
  EXPECT_FALSE(d.heaps.empty());
  EXPECT_GT(d.min_storage_offset_alignment, 0u);
}

}  // namespace
}  // namespace vkm
