#include "engine/program.hpp"

#include <map>

#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/memory.hpp"

namespace vkm {

namespace {

// Indirect dispatch reads its arguments in the draw-indirect stage.
constexpr VkPipelineStageFlags kWorkStages =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT;

void memory_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src_stage, VkAccessFlags src, VkPipelineStageFlags dst_stage,
                    VkAccessFlags dst) {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = src;
  mb.dstAccessMask = dst;
  vkCmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

constexpr VkAccessFlags kWorkWrites = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
constexpr VkAccessFlags kWorkAccess =
    VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
    VK_ACCESS_INDIRECT_COMMAND_READ_BIT;

bool reads(Access a) { return a != Access::write; }
bool writes(Access a) { return a != Access::read; }

}  // namespace

Program::Program(Context& ctx, std::string name, bool profile)
    : ctx_(ctx), name_(std::move(name)), profile_(profile && ctx.timestamp_bits() > 0) {}

Program::~Program() {
  if (last_ticket_) ctx_.wait(last_ticket_);
  if (queries_) vkDestroyQueryPool(ctx_.device(), queries_, nullptr);
  if (cmd_) vkFreeCommandBuffers(ctx_.device(), ctx_.command_pool(), 1, &cmd_);
  if (pool_) vkDestroyDescriptorPool(ctx_.device(), pool_, nullptr);
}

void Program::check_binding(const Kernel& k, const Binding& b, size_t slot) const {
  const DeviceInfo& d = ctx_.info();
  std::string where = "program '" + name_ + "', shader '" + k.desc.spirv + "', binding " + std::to_string(slot);
  if (!b.tensor.buffer) throw Error(where + ": tensor is not allocated");
  if (b.tensor.bytes() == 0) throw Error(where + ": empty tensor " + b.tensor.describe());
  if (b.tensor.offset % d.min_storage_offset_alignment)
    throw Error(where + ": " + b.tensor.describe() + " starts at an offset not aligned to " +
                std::to_string(d.min_storage_offset_alignment) + " bytes");
  if (b.tensor.bytes() > d.max_storage_buffer_range)
    throw Error(where + ": " + b.tensor.describe() + " is " + std::to_string(b.tensor.bytes()) +
                " bytes, over the device's maxStorageBufferRange of " + std::to_string(d.max_storage_buffer_range) +
                "; bind it in pieces");
  if (b.tensor.offset + b.tensor.bytes() > b.tensor.buffer->size())
    throw Error(where + ": " + b.tensor.describe() + " runs past the end of its buffer");
}

void Program::dispatch(const Kernel& k, std::vector<Binding> bindings, const void* push, uint32_t push_bytes,
                       uint32_t gx, uint32_t gy, uint32_t gz, std::string label) {
  if (finished()) throw Error("program '" + name_ + "' is already recorded; nothing can be added to it");
  if (bindings.size() != k.desc.buffers)
    throw Error("program '" + name_ + "': shader '" + k.desc.spirv + "' takes " + std::to_string(k.desc.buffers) +
                " buffers, given " + std::to_string(bindings.size()));
  if (push_bytes != k.desc.push_bytes)
    throw Error("program '" + name_ + "': shader '" + k.desc.spirv + "' takes " + std::to_string(k.desc.push_bytes) +
                " bytes of push constants, given " + std::to_string(push_bytes));
  const uint32_t* maxg = ctx_.info().max_workgroup_count;
  if (gx == 0 || gy == 0 || gz == 0 || gx > maxg[0] || gy > maxg[1] || gz > maxg[2])
    throw Error("program '" + name_ + "': shader '" + k.desc.spirv + "' dispatched with " + std::to_string(gx) + "x" +
                std::to_string(gy) + "x" + std::to_string(gz) + " workgroups, outside the device's limits");
  for (size_t i = 0; i < bindings.size(); ++i) check_binding(k, bindings[i], i);
  Command c;
  c.kernel = &k;
  c.bindings = std::move(bindings);
  c.push.assign(static_cast<const uint8_t*>(push), static_cast<const uint8_t*>(push) + push_bytes);
  c.groups[0] = gx;
  c.groups[1] = gy;
  c.groups[2] = gz;
  c.label = label.empty() ? k.desc.spirv : std::move(label);
  commands_.push_back(std::move(c));
  ++count_dispatches_;
}

void Program::copy(const Tensor& src, const Tensor& dst) {
  if (finished()) throw Error("program '" + name_ + "' is already recorded; nothing can be added to it");
  std::string what = "program '" + name_ + "': copy from " + (src.buffer ? src.describe() : "null") + " to " +
                     (dst.buffer ? dst.describe() : "null");
  if (!src.buffer || !dst.buffer || src.bytes() != dst.bytes() || src.bytes() == 0)
    throw Error(what + " needs two allocated, non-empty tensors of equal byte size");
  if (src.overlaps(dst)) throw Error(what + ": the two overlap");
  if (src.offset + src.bytes() > src.buffer->size() || dst.offset + dst.bytes() > dst.buffer->size())
    throw Error(what + " runs past the end of a buffer");
  Command c;
  c.bindings = {in(src), out(dst)};
  c.label = "copy";
  commands_.push_back(std::move(c));
}

bool Program::hazard(const Command& c) const {
  auto overlaps = [](const std::vector<Range>& rs, const Tensor& t) {
    for (const Range& r : rs)
      if (r.buffer == t.buffer->handle() && r.begin < t.offset + t.bytes() && t.offset < r.end) return true;
    return false;
  };
  for (const Binding& b : c.bindings) {
    if (overlaps(pending_writes_, b.tensor)) return true;                    // read or write after write
    if (writes(b.access) && overlaps(pending_reads_, b.tensor)) return true;  // write after read
  }
  return false;
}

void Program::track(const Command& c) {
  for (const Binding& b : c.bindings) {
    Range r{b.tensor.buffer->handle(), b.tensor.offset, b.tensor.offset + b.tensor.bytes()};
    if (reads(b.access)) pending_reads_.push_back(r);
    if (writes(b.access)) pending_writes_.push_back(r);
  }
}

void Program::finish() {
  if (finished()) return;
  VkDevice dev = ctx_.device();

  // One descriptor set per distinct (kernel layout, bound ranges), written once here.
  std::map<std::string, size_t> set_index;
  std::vector<const Command*> set_owner;
  for (Command& c : commands_) {
    if (!c.kernel) continue;
    std::string key = std::to_string(reinterpret_cast<uintptr_t>(c.kernel->set_layout));
    for (const Binding& b : c.bindings)
      key += "|" + std::to_string(reinterpret_cast<uintptr_t>(b.tensor.buffer)) + ":" + std::to_string(b.tensor.offset) +
             ":" + std::to_string(b.tensor.bytes());
    auto [it, fresh] = set_index.emplace(key, set_owner.size());
    if (fresh) set_owner.push_back(&c);
    c.set = it->second;
  }
  if (!set_owner.empty()) {
    uint32_t descriptors = 0;
    for (const Command* c : set_owner) descriptors += uint32_t(c->bindings.size());
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max(descriptors, 1u)};
    VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pi.maxSets = uint32_t(set_owner.size());
    pi.poolSizeCount = 1;
    pi.pPoolSizes = &size;
    VKM_CHECK(vkCreateDescriptorPool(dev, &pi, nullptr, &pool_));
    std::vector<VkDescriptorSetLayout> layouts;
    for (const Command* c : set_owner) layouts.push_back(c->kernel->set_layout);
    sets_.resize(layouts.size());
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = pool_;
    ai.descriptorSetCount = uint32_t(layouts.size());
    ai.pSetLayouts = layouts.data();
    VKM_CHECK(vkAllocateDescriptorSets(dev, &ai, sets_.data()));
    std::vector<VkDescriptorBufferInfo> infos;
    infos.reserve(descriptors);
    std::vector<VkWriteDescriptorSet> writes;
    for (size_t s = 0; s < set_owner.size(); ++s) {
      const auto& bs = set_owner[s]->bindings;
      for (size_t i = 0; i < bs.size(); ++i) {
        infos.push_back({bs[i].tensor.buffer->handle(), bs[i].tensor.offset, bs[i].tensor.bytes()});
        VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        w.dstSet = sets_[s];
        w.dstBinding = uint32_t(i);
        w.descriptorCount = 1;
        w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        w.pBufferInfo = &infos.back();
        writes.push_back(w);
      }
    }
    vkUpdateDescriptorSets(dev, uint32_t(writes.size()), writes.data(), 0, nullptr);
  }

  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = ctx_.command_pool();
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VKM_CHECK(vkAllocateCommandBuffers(dev, &ai, &cmd_));
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT;  // may be resubmitted before the last run ends
  VKM_CHECK(vkBeginCommandBuffer(cmd_, &bi));
  if (profile_ && !commands_.empty()) {
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = uint32_t(2 * commands_.size());
    VKM_CHECK(vkCreateQueryPool(dev, &qi, nullptr, &queries_));
    vkCmdResetQueryPool(cmd_, queries_, 0, qi.queryCount);
  }
  // Work submitted earlier (this program's last run included) completes before this run touches memory.
  memory_barrier(cmd_, kWorkStages, kWorkWrites, kWorkStages, kWorkAccess);

  const Kernel* bound = nullptr;
  for (size_t i = 0; i < commands_.size(); ++i) {
    const Command& c = commands_[i];
    if (hazard(c) || (profile_ && i > 0)) {
      memory_barrier(cmd_, kWorkStages, kWorkWrites, kWorkStages, kWorkAccess);
      ++barriers_;
      pending_reads_.clear();
      pending_writes_.clear();
    }
    track(c);
    if (queries_) vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queries_, uint32_t(2 * i));
    if (c.kernel) {
      if (bound != c.kernel) {
        vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, c.kernel->pipeline);
        bound = c.kernel;
      }
      vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, c.kernel->layout, 0, 1, &sets_[c.set], 0, nullptr);
      if (!c.push.empty())
        vkCmdPushConstants(cmd_, c.kernel->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, uint32_t(c.push.size()),
                           c.push.data());
      vkCmdDispatch(cmd_, c.groups[0], c.groups[1], c.groups[2]);
    } else {
      const Tensor& s = c.bindings[0].tensor;
      const Tensor& d = c.bindings[1].tensor;
      VkBufferCopy region{s.offset, d.offset, s.bytes()};
      vkCmdCopyBuffer(cmd_, s.buffer->handle(), d.buffer->handle(), 1, &region);
    }
    if (queries_) vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, uint32_t(2 * i + 1));
  }
  // Results become visible to the host once the submission's ticket is reached.
  memory_barrier(cmd_, kWorkStages, kWorkWrites, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
  VKM_CHECK(vkEndCommandBuffer(cmd_));
  pending_reads_.clear();
  pending_writes_.clear();
}

std::vector<DispatchTiming> Program::timings() {
  std::vector<DispatchTiming> out;
  if (!queries_ || !last_ticket_) return out;
  ctx_.wait(last_ticket_);
  std::vector<uint64_t> stamps(2 * commands_.size());
  VKM_CHECK(vkGetQueryPoolResults(ctx_.device(), queries_, 0, uint32_t(stamps.size()), stamps.size() * 8,
                                  stamps.data(), 8, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
  double period = ctx_.info().timestamp_period_ns;
  uint32_t bits = ctx_.timestamp_bits();
  uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  for (size_t i = 0; i < commands_.size(); ++i)
    out.push_back({commands_[i].label, double((stamps[2 * i + 1] - stamps[2 * i]) & mask) * period * 1e-6});
  return out;
}

}  // namespace vkm
