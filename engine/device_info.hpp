#pragma once
// What a physical device can do, probed once; what `vkmind devices` prints and what kernels choose paths by.
#include <cstdint>
#include <string>
#include <vector>

#include <volk.h>

namespace vkm {

struct CoopMatrixShape {
  uint32_t m, n, k;
  std::string a, b, c, result;  // component types, e.g. "f16", "f32"
  std::string scope;
};

struct MemoryHeapInfo {
  uint64_t size;
  bool device_local;
  std::string types;  // flags of the memory types in this heap, e.g. "device-local host-visible coherent"
};

struct DeviceInfo {
  uint32_t index = 0;
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  std::string name;
  std::string type;  // discrete, integrated, virtual, cpu, other
  VkPhysicalDeviceType vk_type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  uint32_t api_version = 0;
  std::string driver;
  uint32_t vendor_id = 0, device_id = 0;

  bool shader_float16 = false, shader_int8 = false, shader_int16 = false, shader_int64 = false;
  bool storage_16bit = false, storage_8bit = false;
  bool buffer_device_address = false, timeline_semaphore = false, subgroup_size_control = false;
  bool vulkan_memory_model = false;  // what GL_KHR_memory_scope_semantics (cooperative matrices) compiles to
  uint32_t subgroup_size = 0, min_subgroup_size = 0, max_subgroup_size = 0;
  std::vector<std::string> subgroup_ops;  // basic, vote, arithmetic, ballot, shuffle, ...
  bool subgroup_in_compute = false;

  uint32_t max_shared_memory = 0;
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_workgroup_size[3] = {0, 0, 0};
  uint32_t max_workgroup_count[3] = {0, 0, 0};
  uint32_t max_push_constants = 0;
  uint64_t max_storage_buffer_range = 0;
  uint64_t max_memory_allocation = 0;
  uint64_t min_storage_offset_alignment = 0;
  std::vector<MemoryHeapInfo> heaps;
  bool timestamps = false;  // compute queue supports timestamps
  float timestamp_period_ns = 0;

  bool nv_cooperative_matrix = false, khr_cooperative_matrix = false;
  std::vector<CoopMatrixShape> nv_coop_shapes, khr_coop_shapes;
  std::vector<std::string> extensions;

  bool has_extension(const char* name) const;
  std::string version_string() const;
};

DeviceInfo probe_device(VkInstance instance, VkPhysicalDevice pd, uint32_t index);

// Preference order when no device is named: discrete, integrated, virtual, CPU, other.
int device_rank(VkPhysicalDeviceType t);

}  // namespace vkm
