#pragma once
// A kernel is one embedded SPIR-V variant made into a compute pipeline with its specialization constants.
// Every kernel binds `buffers` storage buffers at set 0, bindings 0..buffers-1, and takes its shapes as
// push constants of `push_bytes`.
#include <cstdint>
#include <string>
#include <vector>

#include <volk.h>

namespace vkm {

struct KernelDesc {
  std::string spirv;           // name in the embedded table, e.g. "cast.f32_to_f16"
  uint32_t buffers = 0;
  uint32_t push_bytes = 0;
  std::vector<uint32_t> spec;  // specialization constants, by constant_id 0, 1, ... (floats bit-cast)

  std::string key() const;
};

struct Kernel {
  KernelDesc desc;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
};

}  // namespace vkm
