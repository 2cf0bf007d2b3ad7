#pragma once
// A program is a list of dispatches recorded once into a command buffer and submitted any number of times.
// Barriers are inserted only where a dispatch touches memory that an earlier one wrote (or writes memory
// that an earlier one read), judged by the byte ranges of the bound tensors. Descriptor sets are
// allocated and written once, when the program is finished, and shared by dispatches that bind alike.
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <volk.h>

#include "engine/kernel.hpp"
#include "engine/tensor.hpp"

namespace vkm {

class Context;

enum class Access : uint8_t { read, write, read_write };

struct Binding {
  Tensor tensor;
  Access access;
};
inline Binding in(const Tensor& t) { return {t, Access::read}; }
inline Binding out(const Tensor& t) { return {t, Access::write}; }
inline Binding inout(const Tensor& t) { return {t, Access::read_write}; }

struct DispatchTiming {
  std::string label;
  double ms;
};

class Program {
 public:
  // With `profile`, a GPU timestamp pair brackets every command, and commands are serialized by barriers
  // so that each one's time is its own (see timings()).
  Program(Context& ctx, std::string name, bool profile = false);
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  void dispatch(const Kernel& k, std::vector<Binding> bindings, const void* push, uint32_t push_bytes,
                uint32_t gx, uint32_t gy = 1, uint32_t gz = 1, std::string label = {});
  // Push constants as one struct of 4-byte scalars mirroring the shader's push_constant block.
  template <class Push>
    requires std::is_class_v<Push> && std::is_trivially_copyable_v<Push>
  void dispatch(const Kernel& k, std::vector<Binding> bindings, const Push& push, uint32_t gx, uint32_t gy = 1,
                uint32_t gz = 1, std::string label = {}) {
    dispatch(k, std::move(bindings), &push, sizeof(Push), gx, gy, gz, std::move(label));
  }
  // Buffer-to-buffer copy of equal byte sizes (a transfer command, tracked like a dispatch).
  void copy(const Tensor& src, const Tensor& dst);

  // Records the command buffer; called by the first submit. Nothing can be added afterwards.
  void finish();
  bool finished() const { return cmd_ != VK_NULL_HANDLE; }

  const std::string& name() const { return name_; }
  Context& context() const { return ctx_; }
  size_t dispatch_count() const { return count_dispatches_; }
  size_t barrier_count() const { return barriers_; }  // barriers between commands, after finish()
  size_t descriptor_set_count() const { return sets_.size(); }
  VkCommandBuffer command_buffer() const { return cmd_; }
  uint64_t last_ticket() const { return last_ticket_; }
  void set_last_ticket(uint64_t t) { last_ticket_ = t; }

  // Per-dispatch GPU times of the last submission (waits for it); empty unless profiling.
  std::vector<DispatchTiming> timings();

 private:
  struct Command {
    const Kernel* kernel = nullptr;  // null for a copy
    std::vector<Binding> bindings;
    std::vector<uint8_t> push;
    uint32_t groups[3] = {1, 1, 1};
    std::string label;
    size_t set = 0;  // index into sets_
  };
  struct Range {
    VkBuffer buffer;
    uint64_t begin, end;
  };
  bool hazard(const Command& c) const;
  void track(const Command& c);
  void check_binding(const Kernel& k, const Binding& b, size_t slot) const;

  Context& ctx_;
  std::string name_;
  bool profile_;
  std::vector<Command> commands_;
  std::vector<VkDescriptorSet> sets_;
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  std::vector<Range> pending_reads_, pending_writes_;
  size_t count_dispatches_ = 0;
  size_t barriers_ = 0;
  uint64_t last_ticket_ = 0;
};

}  // namespace vkm
