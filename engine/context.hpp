#pragma once
// The context is one logical device: its queue, kernels (pipelines from embedded SPIR-V, built once and
// cached), submission on a timeline semaphore, and host<->tensor transfers.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/device_info.hpp"
#include "engine/instance.hpp"
#include "engine/kernel.hpp"
#include "engine/memory.hpp"
#include "engine/tensor.hpp"

namespace vkm {

class Program;

struct ContextOptions {
  std::optional<std::string> device;  // index or name substring; else VKMIND_DEVICE; else the best device
  InstanceOptions instance = InstanceOptions::from_env();
  // Map device-kind memory where the host can see it. Off, transfers take the staging path that discrete
  // GPUs take, which is how that path is tested on shared-memory devices.
  bool map_device_memory = true;
  // f16 matrix products on tensor cores through VK_NV_cooperative_matrix, where the device has it. Off
  // (VKMIND_NO_COOPMAT=1, `vkmind --no-coopmat`), the tiled kernels run and the extension is not enabled.
  bool cooperative_matrix = cooperative_matrix_from_env();
  // Automatic f16 products and attention take the cooperative kernels with emulated fragments
  // (shaders/coopmat.glsl) wherever those fit: for tests that run a whole model through the tensor-core
  // kernels' code on a device without tensor cores.
  bool emulate_cooperative_matrix = false;

  // False when VKMIND_NO_COOPMAT is set to anything but "" or "0".
  static bool cooperative_matrix_from_env();
};

class Context {
 public:
  explicit Context(ContextOptions opts = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const DeviceInfo& info() const { return *info_; }
  VkDevice device() const { return device_; }
  VkCommandPool command_pool() const { return pool_; }
  bool validation() const { return instance_->validation(); }
  bool maps_device_memory() const { return map_device_memory_; }
  // ContextOptions::cooperative_matrix: whether ops may take the cooperative-matrix path (the device may
  // still lack it; ops::choose_matmul_path decides).
  bool allows_cooperative_matrix() const { return cooperative_matrix_; }
  // ContextOptions::emulate_cooperative_matrix.
  bool emulates_cooperative_matrix() const { return emulate_cooperative_matrix_; }
  // Valid bits of the queue's timestamps (0: none); profiling masks results with it.
  uint32_t timestamp_bits() const { return timestamp_bits_; }

  // The pipeline for a kernel variant, built on first use. Throws if the shader is not embedded.
  const Kernel& kernel(const KernelDesc& desc);
  // The shader variants ("<stem>.<variant>") of the kernels built so far, sorted, each once: which kernels
  // the ops chose.
  std::vector<std::string> built_variants();

  // Submits a program (finishing it first if needed) and returns its ticket; never waits.
  uint64_t submit(Program& p);
  void wait(uint64_t ticket);
  void wait_idle() { wait(next_ticket_ - 1); }
  uint64_t completed() const;

  // Host transfers. They wait for all submitted work first, so they are for setup and results, not for the
  // inner loop of a step (which reads and writes mapped host-kind tensors instead).
  void write(const Tensor& t, const void* src, uint64_t bytes);
  void read(const Tensor& t, void* dst, uint64_t bytes);
  template <class T>
  void write(const Tensor& t, std::span<const T> v) {
    write(t, v.data(), v.size_bytes());
  }
  template <class T>
  void write(const Tensor& t, const std::vector<T>& v) {
    write(t, v.data(), v.size() * sizeof(T));
  }
  template <class T>
  std::vector<T> read(const Tensor& t) {
    std::vector<T> v(t.bytes() / sizeof(T));
    read(t, v.data(), t.bytes());
    return v;
  }

 private:
  uint64_t submit(VkCommandBuffer cmd);
  void transfer(const Tensor& t, void* host, uint64_t bytes, bool to_device);

  std::unique_ptr<Instance> instance_;
  bool map_device_memory_ = true;
  bool cooperative_matrix_ = true;
  bool emulate_cooperative_matrix_ = false;
  const DeviceInfo* info_ = nullptr;
  VkDevice device_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  uint32_t timestamp_bits_ = 0;
  VkQueue queue_ = VK_NULL_HANDLE;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkSemaphore timeline_ = VK_NULL_HANDLE;
  uint64_t next_ticket_ = 1;
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  std::map<std::string, std::unique_ptr<Kernel>> kernels_;
  std::mutex kernels_mutex_;
  std::unique_ptr<Buffer> staging_;
  std::mutex queue_mutex_;
};

}  // namespace vkm
