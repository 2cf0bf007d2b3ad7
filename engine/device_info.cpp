#include "engine/device_info.hpp"

#include <cstring>

namespace vkm {

namespace {

// VK_KHR_cooperative_matrix postdates Debian 12's Vulkan headers (1.3.239); these mirror the registry's
// definitions so that the probe can report it where a driver has it.
constexpr VkStructureType kCoopMatrixPropertiesKHR = VkStructureType(1000506001);
struct CoopMatrixPropertiesKHR {
  VkStructureType sType;
  void* pNext;
  uint32_t MSize, NSize, KSize;
  uint32_t AType, BType, CType, ResultType;
  VkBool32 saturatingAccumulation;
  uint32_t scope;
};
using GetCoopMatrixPropertiesKHR = VkResult(VKAPI_PTR*)(VkPhysicalDevice, uint32_t*, CoopMatrixPropertiesKHR*);

std::string component_name(uint32_t t) {
  switch (t) {
    case 0: return "f16";
    case 1: return "f32";
    case 2: return "f64";
    case 3: return "i8";
    case 4: return "i16";
    case 5: return "i32";
    case 6: return "i64";
    case 7: return "u8";
    case 8: return "u16";
    case 9: return "u32";
    case 10: return "u64";
    case 1000141000: return "bf16";
    default: return "type" + std::to_string(t);
  }
}

std::string scope_name(uint32_t s) {
  switch (s) {
    case 1: return "device";
    case 2: return "workgroup";
    case 3: return "subgroup";
    case 5: return "queue-family";
    default: return "scope" + std::to_string(s);
  }
}

std::string type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

std::vector<std::string> subgroup_op_names(VkSubgroupFeatureFlags f) {
  std::vector<std::string> out;
  const std::pair<VkSubgroupFeatureFlagBits, const char*> names[] = {
      {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
      {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
      {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
      {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle-relative"},
      {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
      {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"},
  };
  for (auto [bit, name] : names)
    if (f & bit) out.push_back(name);
  return out;
}

}  // namespace

int device_rank(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
  }
}

bool DeviceInfo::has_extension(const char* ext) const {
  for (const auto& e : extensions)
    if (e == ext) return true;
  return false;
}

std::string DeviceInfo::version_string() const {
  return std::to_string(VK_API_VERSION_MAJOR(api_version)) + "." +
         std::to_string(VK_API_VERSION_MINOR(api_version)) + "." +
         std::to_string(VK_API_VERSION_PATCH(api_version));
}

DeviceInfo probe_device(VkInstance instance, VkPhysicalDevice pd, uint32_t index) {
  DeviceInfo d;
  d.index = index;
  d.handle = pd;

  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> exts(n);
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data());
  for (auto& e : exts) d.extensions.push_back(e.extensionName);
  d.nv_cooperative_matrix = d.has_extension(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
  d.khr_cooperative_matrix = d.has_extension("VK_KHR_cooperative_matrix");

  VkPhysicalDeviceSubgroupSizeControlProperties sgsize{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, &sgsize};
  VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES, &subgroup};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &driver};
  vkGetPhysicalDeviceProperties2(pd, &props);
  const VkPhysicalDeviceProperties& p = props.properties;
  const VkPhysicalDeviceLimits& L = p.limits;
  d.name = p.deviceName;
  d.vk_type = p.deviceType;
  d.type = type_name(p.deviceType);
  d.api_version = p.apiVersion;
  d.vendor_id = p.vendorID;
  d.device_id = p.deviceID;
  d.driver = std::string(driver.driverName) + " " + driver.driverInfo;
  d.subgroup_size = subgroup.subgroupSize;
  d.subgroup_ops = subgroup_op_names(subgroup.supportedOperations);
  d.subgroup_in_compute = subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT;
  d.min_subgroup_size = sgsize.minSubgroupSize ? sgsize.minSubgroupSize : subgroup.subgroupSize;
  d.max_subgroup_size = sgsize.maxSubgroupSize ? sgsize.maxSubgroupSize : subgroup.subgroupSize;
  d.max_shared_memory = L.maxComputeSharedMemorySize;
  d.max_workgroup_invocations = L.maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; ++i) {
    d.max_workgroup_size[i] = L.maxComputeWorkGroupSize[i];
    d.max_workgroup_count[i] = L.maxComputeWorkGroupCount[i];
  }
  d.max_push_constants = L.maxPushConstantsSize;
  d.max_storage_buffer_range = L.maxStorageBufferRange;
  d.min_storage_offset_alignment = L.minStorageBufferOffsetAlignment;
  d.timestamp_period_ns = L.timestampPeriod;

  VkPhysicalDeviceMaintenance3Properties m3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceProperties2 props2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &m3};
  vkGetPhysicalDeviceProperties2(pd, &props2);
  d.max_memory_allocation = m3.maxMemoryAllocationSize;

  if (d.api_version >= VK_API_VERSION_1_2) {
    VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &f12};
    VkPhysicalDeviceSubgroupSizeControlFeatures fsg{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES, &f11};
    VkPhysicalDeviceFeatures2 f{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &fsg};
    vkGetPhysicalDeviceFeatures2(pd, &f);
    d.shader_int16 = f.features.shaderInt16;
    d.shader_int64 = f.features.shaderInt64;
    d.shader_float16 = f12.shaderFloat16;
    d.shader_int8 = f12.shaderInt8;
    d.storage_16bit = f11.storageBuffer16BitAccess;
    d.storage_8bit = f12.storageBuffer8BitAccess;
    d.buffer_device_address = f12.bufferDeviceAddress;
    d.timeline_semaphore = f12.timelineSemaphore;
    d.vulkan_memory_model = f12.vulkanMemoryModel;
    d.subgroup_size_control = fsg.subgroupSizeControl &&
                              (d.api_version >= VK_API_VERSION_1_3 || d.has_extension("VK_EXT_subgroup_size_control"));
  }

  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
  std::vector<VkQueueFamilyProperties> families(n);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, families.data());
  for (auto& q : families)
    if ((q.queueFlags & VK_QUEUE_COMPUTE_BIT) && q.timestampValidBits > 0) d.timestamps = true;

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  for (uint32_t h = 0; h < mem.memoryHeapCount; ++h) {
    MemoryHeapInfo heap{mem.memoryHeaps[h].size, bool(mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT), ""};
    for (uint32_t t = 0; t < mem.memoryTypeCount; ++t) {
      if (mem.memoryTypes[t].heapIndex != h) continue;
      VkMemoryPropertyFlags fl = mem.memoryTypes[t].propertyFlags;
      std::string s;
      if (fl & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) s += "device-local,";
      if (fl & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) s += "host-visible,";
      if (fl & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) s += "coherent,";
      if (fl & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) s += "cached,";
      if (s.empty()) s = "none,";
      s.pop_back();
      heap.types += (heap.types.empty() ? "" : " | ") + s;
    }
    d.heaps.push_back(heap);
  }

  if (d.nv_cooperative_matrix && vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) {
    vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, nullptr);
    std::vector<VkCooperativeMatrixPropertiesNV> shapes(n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
    vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, shapes.data());
    for (auto& s : shapes)
      d.nv_coop_shapes.push_back({s.MSize, s.NSize, s.KSize, component_name(s.AType), component_name(s.BType),
                                  component_name(s.CType), component_name(s.DType), scope_name(s.scope)});
  }
  if (d.khr_cooperative_matrix) {
    auto get = reinterpret_cast<GetCoopMatrixPropertiesKHR>(
        vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"));
    if (get) {
      get(pd, &n, nullptr);
      std::vector<CoopMatrixPropertiesKHR> shapes(n);
      for (auto& s : shapes) {
        std::memset(&s, 0, sizeof s);
        s.sType = kCoopMatrixPropertiesKHR;
      }
      get(pd, &n, shapes.data());
      for (auto& s : shapes)
        d.khr_coop_shapes.push_back({s.MSize, s.NSize, s.KSize, component_name(s.AType), component_name(s.BType),
                                     component_name(s.CType), component_name(s.ResultType), scope_name(s.scope)});
    }
  }
  return d;
}

}  // namespace vkm
