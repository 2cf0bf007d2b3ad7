#include "engine/memory.hpp"

#include <algorithm>

#include "engine/context.hpp"
#include "engine/error.hpp"

namespace vkm {

namespace {

std::string mib(uint64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; }

uint32_t pick_memory_type(const Context& ctx, uint32_t allowed, MemoryKind kind, uint64_t bytes, const std::string& name) {
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(ctx.info().handle, &mem);
  const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  const VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  // Preferred property sets, best first. Device memory that is also mappable is only preferred where host
  // and device share memory: on a discrete GPU it is the small BAR window, slow for the host to read.
  std::vector<VkMemoryPropertyFlags> wanted;
  bool shared = ctx.info().vk_type != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
  if (kind == MemoryKind::device) {
    if (shared) wanted.push_back(local | host);
    wanted.push_back(local);
    wanted.push_back(0);
  } else {
    wanted.push_back(host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    wanted.push_back(host);
    wanted.push_back(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
  }
  for (VkMemoryPropertyFlags w : wanted)
    for (uint32_t t = 0; t < mem.memoryTypeCount; ++t)
      if ((allowed & (1u << t)) && (mem.memoryTypes[t].propertyFlags & w) == w &&
          mem.memoryHeaps[mem.memoryTypes[t].heapIndex].size >= bytes)
        return t;
  throw Error("no memory type on " + ctx.info().name + " can hold buffer '" + name + "' of " + mib(bytes));
}

}  // namespace

Buffer::Buffer(Context& ctx, std::string name, uint64_t bytes, MemoryKind kind)
    : ctx_(ctx), name_(std::move(name)), size_(bytes) {
  const DeviceInfo& info = ctx.info();
  if (bytes > info.max_memory_allocation)
    throw Error("buffer '" + name_ + "' needs " + mib(bytes) + " in one allocation but " + info.name +
                " allows at most " + mib(info.max_memory_allocation));
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = bytes;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT |
             VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VKM_CHECK(vkCreateBuffer(ctx.device(), &bi, nullptr, &buffer_));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx.device(), buffer_, &req);
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = pick_memory_type(ctx, req.memoryTypeBits, kind, req.size, name_);
  VkResult r = vkAllocateMemory(ctx.device(), &ai, nullptr, &memory_);
  if (r != VK_SUCCESS) {
    vkDestroyBuffer(ctx.device(), buffer_, nullptr);
    throw Error("out of memory on " + info.name + ": buffer '" + name_ + "' of " + mib(bytes) + " (" +
                vk_result_name(r) + "); use a smaller batch, sequence length or model");
  }
  VKM_CHECK(vkBindBufferMemory(ctx.device(), buffer_, memory_, 0));
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(info.handle, &mem);
  VkMemoryPropertyFlags flags = mem.memoryTypes[ai.memoryTypeIndex].propertyFlags;
  if ((flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (kind == MemoryKind::host || ctx.maps_device_memory())) {
    void* p = nullptr;
    VKM_CHECK(vkMapMemory(ctx.device(), memory_, 0, VK_WHOLE_SIZE, 0, &p));
    mapped_ = static_cast<uint8_t*>(p);
    coherent_ = flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  }
}

Buffer::~Buffer() {
  if (mapped_) vkUnmapMemory(ctx_.device(), memory_);
  vkDestroyBuffer(ctx_.device(), buffer_, nullptr);
  vkFreeMemory(ctx_.device(), memory_, nullptr);
}

Arena::Arena(Context& ctx, std::string name, MemoryKind kind, uint64_t block_bytes)
    : ctx_(ctx), name_(std::move(name)), kind_(kind), block_bytes_(block_bytes) {}

Tensor Arena::alloc(DType dtype, Shape shape) {
  Tensor t{nullptr, 0, dtype, std::move(shape)};
  for (int64_t d : t.shape)
    if (d < 0) throw Error("arena '" + name_ + "': negative dimension in " + shape_string(t.shape));
  uint64_t align = std::max<uint64_t>(256, ctx_.info().min_storage_offset_alignment);
  uint64_t bytes = std::max<uint64_t>(t.bytes(), 4);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    uint64_t start = (tops_[b] + align - 1) / align * align;
    if (start + bytes <= blocks_[b]->size()) {
      tops_[b] = start + bytes;
      t.buffer = blocks_[b].get();
      t.offset = start;
      return t;
    }
  }
  uint64_t size = std::max(block_bytes_, (bytes + align - 1) / align * align);
  blocks_.push_back(std::make_unique<Buffer>(ctx_, name_ + "#" + std::to_string(blocks_.size()), size, kind_));
  tops_.push_back(bytes);
  t.buffer = blocks_.back().get();
  return t;
}

void Arena::reset() { std::fill(tops_.begin(), tops_.end(), 0); }

uint64_t Arena::used() const {
  uint64_t s = 0;
  for (uint64_t t : tops_) s += t;
  return s;
}

uint64_t Arena::capacity() const {
  uint64_t s = 0;
  for (auto& b : blocks_) s += b->size();
  return s;
}

}  // namespace vkm
