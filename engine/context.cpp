#include "engine/context.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>

#include "engine/error.hpp"
#include "engine/program.hpp"
#include "engine/spirv.hpp"

namespace vkm {

namespace {
constexpr uint64_t kStagingBytes = 64ull << 20;
}

bool ContextOptions::cooperative_matrix_from_env() {
  const char* v = std::getenv("VKMIND_NO_COOPMAT");
  return !v || !*v || std::strcmp(v, "0") == 0;
}

Context::Context(ContextOptions opts)
    : instance_(std::make_unique<Instance>(opts.instance)),
      map_device_memory_(opts.map_device_memory),
      cooperative_matrix_(opts.cooperative_matrix),
      emulate_cooperative_matrix_(opts.emulate_cooperative_matrix) {
  info_ = &instance_->select(opts.device);
  const DeviceInfo& d = *info_;
  if (d.api_version < VK_API_VERSION_1_2 || !d.timeline_semaphore)
    throw Error("device '" + d.name + "' offers Vulkan " + d.version_string() +
                "; vkmind needs Vulkan 1.2 with timeline semaphores");

  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(d.handle, &n, nullptr);
  std::vector<VkQueueFamilyProperties> families(n);
  vkGetPhysicalDeviceQueueFamilyProperties(d.handle, &n, families.data());
  // A compute family with timestamps if there is one, so that profiling works wherever the device can.
  auto compute = std::find_if(families.begin(), families.end(), [](auto& q) {
    return (q.queueFlags & VK_QUEUE_COMPUTE_BIT) && q.timestampValidBits > 0;
  });
  if (compute == families.end())
    compute = std::find_if(families.begin(), families.end(), [](auto& q) { return q.queueFlags & VK_QUEUE_COMPUTE_BIT; });
  if (compute == families.end()) throw Error("device '" + d.name + "' has no compute queue");
  queue_family_ = uint32_t(compute - families.begin());
  timestamp_bits_ = compute->timestampValidBits;

  // Enable only what kernels use, and only where the device has it; kernels check these flags.
  VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &f12};
  VkPhysicalDeviceFeatures2 f{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f11};
  f.features.shaderInt16 = d.shader_int16;
  f.features.shaderInt64 = d.shader_int64;
  f11.storageBuffer16BitAccess = d.storage_16bit;
  f12.shaderFloat16 = d.shader_float16;
  f12.shaderInt8 = d.shader_int8;
  f12.storageBuffer8BitAccess = d.storage_8bit;
  f12.timelineSemaphore = VK_TRUE;
  std::vector<const char*> exts;
  if (d.nv_cooperative_matrix && opts.cooperative_matrix) {
    exts.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    coop.cooperativeMatrix = VK_TRUE;
    f12.pNext = &coop;
    f12.vulkanMemoryModel = d.vulkan_memory_model;  // the cooperative-matrix shaders use that memory model
  }

  float priority = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = queue_family_;
  qi.queueCount = 1;
  qi.pQueuePriorities = &priority;
  VkDeviceCreateInfo ci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, &f};
  ci.queueCreateInfoCount = 1;
  ci.pQueueCreateInfos = &qi;
  ci.enabledExtensionCount = uint32_t(exts.size());
  ci.ppEnabledExtensionNames = exts.data();
  VKM_CHECK(vkCreateDevice(d.handle, &ci, nullptr, &device_));
  vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = queue_family_;
  VKM_CHECK(vkCreateCommandPool(device_, &pi, nullptr, &pool_));

  VkSemaphoreTypeCreateInfo ti{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO};
  ti.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE;
  VkSemaphoreCreateInfo si{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, &ti};
  VKM_CHECK(vkCreateSemaphore(device_, &si, nullptr, &timeline_));

  VkPipelineCacheCreateInfo ci_cache{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  VKM_CHECK(vkCreatePipelineCache(device_, &ci_cache, nullptr, &pipeline_cache_));
}

Context::~Context() {
  if (!device_) return;
  vkDeviceWaitIdle(device_);
  staging_.reset();
  for (auto& [key, k] : kernels_) {
    vkDestroyPipeline(device_, k->pipeline, nullptr);
    vkDestroyPipelineLayout(device_, k->layout, nullptr);
    vkDestroyDescriptorSetLayout(device_, k->set_layout, nullptr);
  }
  vkDestroyPipelineCache(device_, pipeline_cache_, nullptr);
  vkDestroySemaphore(device_, timeline_, nullptr);
  vkDestroyCommandPool(device_, pool_, nullptr);
  vkDestroyDevice(device_, nullptr);
}

std::string KernelDesc::key() const {
  std::string k = spirv + "|" + std::to_string(buffers) + "|" + std::to_string(push_bytes);
  for (uint32_t s : spec) k += "|" + std::to_string(s);
  return k;
}

std::vector<std::string> Context::built_variants() {
  std::lock_guard lock(kernels_mutex_);
  std::set<std::string> names;
  for (const auto& [key, k] : kernels_) names.insert(k->desc.spirv);
  return {names.begin(), names.end()};
}

const Kernel& Context::kernel(const KernelDesc& desc) {
  std::lock_guard lock(kernels_mutex_);
  std::string key = desc.key();
  if (auto it = kernels_.find(key); it != kernels_.end()) return *it->second;
  const spirv::Module* m = spirv::find(desc.spirv);
  if (!m) throw Error("shader '" + desc.spirv + "' is not embedded in this build (see shaders/CMakeLists.txt)");
  if (desc.push_bytes % 4)
    throw Error("shader '" + desc.spirv + "': push constants must be whole 4-byte words, not " +
                std::to_string(desc.push_bytes) + " bytes");
  if (desc.push_bytes > info_->max_push_constants)
    throw Error("shader '" + desc.spirv + "' needs " + std::to_string(desc.push_bytes) +
                " bytes of push constants; the device allows " + std::to_string(info_->max_push_constants));

  auto k = std::make_unique<Kernel>();
  k->desc = desc;
  std::vector<VkDescriptorSetLayoutBinding> slots(desc.buffers);
  for (uint32_t i = 0; i < desc.buffers; ++i)
    slots[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  li.bindingCount = desc.buffers;
  li.pBindings = slots.data();
  VKM_CHECK(vkCreateDescriptorSetLayout(device_, &li, nullptr, &k->set_layout));

  VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, desc.push_bytes};
  VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pl.setLayoutCount = 1;
  pl.pSetLayouts = &k->set_layout;
  pl.pushConstantRangeCount = desc.push_bytes ? 1 : 0;
  pl.pPushConstantRanges = &push;
  VKM_CHECK(vkCreatePipelineLayout(device_, &pl, nullptr, &k->layout));

  VkShaderModuleCreateInfo mi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  mi.codeSize = m->count * 4;
  mi.pCode = m->words;
  VkShaderModule module;
  VKM_CHECK(vkCreateShaderModule(device_, &mi, nullptr, &module));

  std::vector<VkSpecializationMapEntry> entries(desc.spec.size());
  for (uint32_t i = 0; i < entries.size(); ++i) entries[i] = {i, i * 4, 4};
  VkSpecializationInfo spec{uint32_t(entries.size()), entries.data(), desc.spec.size() * 4, desc.spec.data()};
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = module;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = entries.empty() ? nullptr : &spec;
  ci.layout = k->layout;
  VkResult r = vkCreateComputePipelines(device_, pipeline_cache_, 1, &ci, nullptr, &k->pipeline);
  vkDestroyShaderModule(device_, module, nullptr);
  if (r != VK_SUCCESS)
    throw Error("building the pipeline for shader '" + desc.spirv + "' failed with " + vk_result_name(r));
  return *kernels_.emplace(key, std::move(k)).first->second;
}

uint64_t Context::submit(Program& p) {
  if (!p.finished()) p.finish();
  uint64_t ticket = submit(p.command_buffer());
  p.set_last_ticket(ticket);
  return ticket;
}

uint64_t Context::submit(VkCommandBuffer cmd) {
  std::lock_guard lock(queue_mutex_);
  uint64_t ticket = next_ticket_++;
  VkTimelineSemaphoreSubmitInfo ts{VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO};
  ts.signalSemaphoreValueCount = 1;
  ts.pSignalSemaphoreValues = &ticket;
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO, &ts};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  si.signalSemaphoreCount = 1;
  si.pSignalSemaphores = &timeline_;
  VKM_CHECK(vkQueueSubmit(queue_, 1, &si, VK_NULL_HANDLE));
  return ticket;
}

void Context::wait(uint64_t ticket) {
  if (ticket == 0) return;
  VkSemaphoreWaitInfo wi{VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO};
  wi.semaphoreCount = 1;
  wi.pSemaphores = &timeline_;
  wi.pValues = &ticket;
  VKM_CHECK(vkWaitSemaphores(device_, &wi, UINT64_MAX));
}

uint64_t Context::completed() const {
  uint64_t v = 0;
  VKM_CHECK(vkGetSemaphoreCounterValue(device_, timeline_, &v));
  return v;
}

void Context::write(const Tensor& t, const void* src, uint64_t bytes) {
  transfer(t, const_cast<void*>(src), bytes, true);
}

void Context::read(const Tensor& t, void* dst, uint64_t bytes) { transfer(t, dst, bytes, false); }

void Context::transfer(const Tensor& t, void* host, uint64_t bytes, bool to_device) {
  if (!t.buffer) throw Error("transfer to or from an unallocated tensor");
  if (bytes != t.bytes())
    throw Error(std::string(to_device ? "writing " : "reading ") + std::to_string(bytes) + " bytes " +
                (to_device ? "into " : "from ") + t.describe() + " of " + std::to_string(t.bytes()) + " bytes");
  wait_idle();
  Buffer& b = *t.buffer;
  if (uint8_t* p = b.mapped()) {
    VkMappedMemoryRange range{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, nullptr, b.memory(), 0, VK_WHOLE_SIZE};
    if (to_device) {
      std::memcpy(p + t.offset, host, bytes);
      if (!b.coherent()) VKM_CHECK(vkFlushMappedMemoryRanges(device_, 1, &range));
    } else {
      if (!b.coherent()) VKM_CHECK(vkInvalidateMappedMemoryRanges(device_, 1, &range));
      std::memcpy(host, p + t.offset, bytes);
    }
    return;
  }
  if (!staging_) staging_ = std::make_unique<Buffer>(*this, "staging", kStagingBytes, MemoryKind::host);
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd;
  VKM_CHECK(vkAllocateCommandBuffers(device_, &ai, &cmd));
  for (uint64_t done = 0; done < bytes; done += kStagingBytes) {
    uint64_t n = std::min(kStagingBytes, bytes - done);
    uint8_t* h = static_cast<uint8_t*>(host) + done;
    if (to_device) std::memcpy(staging_->mapped(), h, n);
    VKM_CHECK(vkResetCommandBuffer(cmd, 0));
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VKM_CHECK(vkBeginCommandBuffer(cmd, &bi));
    VkBufferCopy region{to_device ? 0 : t.offset + done, to_device ? t.offset + done : 0, n};
    vkCmdCopyBuffer(cmd, to_device ? staging_->handle() : b.handle(), to_device ? b.handle() : staging_->handle(), 1,
                    &region);
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0,
                         nullptr);
    VKM_CHECK(vkEndCommandBuffer(cmd));
    uint64_t ticket = submit(cmd);
    wait(ticket);
    if (!to_device) std::memcpy(h, staging_->mapped(), n);
  }
  vkFreeCommandBuffers(device_, pool_, 1, &cmd);
}

}  // namespace vkm
