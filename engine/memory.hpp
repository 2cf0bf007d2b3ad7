#pragma once
// Device memory: a Buffer is one VkBuffer bound to its own allocation; an Arena hands out tensors from a
// list of such blocks and is freed whole, so each lifetime (parameters, activations, scratch) is one Arena.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <volk.h>

#include "engine/tensor.hpp"

namespace vkm {

class Context;

enum class MemoryKind {
  device,  // fastest for shaders; mapped too where the device shares memory with the host (lavapipe, iGPUs)
  host,    // host-visible and coherent: staging, and small values the host writes every step
};

class Buffer {
 public:
  Buffer(Context& ctx, std::string name, uint64_t bytes, MemoryKind kind);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }
  uint8_t* mapped() const { return mapped_; }  // null when the host cannot see this memory
  bool coherent() const { return coherent_; }
  VkDeviceMemory memory() const { return memory_; }

 private:
  Context& ctx_;
  std::string name_;
  uint64_t size_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  uint8_t* mapped_ = nullptr;
  bool coherent_ = true;
};

class Arena {
 public:
  // Blocks are `block_bytes` large (or one tensor's size where that is larger).
  Arena(Context& ctx, std::string name, MemoryKind kind = MemoryKind::device, uint64_t block_bytes = 64ull << 20);

  // Aligned to the device's storage-buffer offset alignment, so any tensor can be bound as it is.
  Tensor alloc(DType dtype, Shape shape);
  // Forgets every tensor handed out; the memory is kept for reuse.
  void reset();

  uint64_t used() const;
  uint64_t capacity() const;
  const std::string& name() const { return name_; }

 private:
  Context& ctx_;
  std::string name_;
  MemoryKind kind_;
  uint64_t block_bytes_;
  std::vector<std::unique_ptr<Buffer>> blocks_;
  std::vector<uint64_t> tops_;  // bytes handed out of each block
};

}  // namespace vkm
