#pragma once
// The Vulkan instance: volk loading, the validation layer when asked, and the list of devices.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/device_info.hpp"

namespace vkm {

struct InstanceOptions {
  // Enabled by VKMIND_VALIDATION=1, or when VK_INSTANCE_LAYERS already names the validation layer.
  bool validation = false;
  static InstanceOptions from_env();
};

class Instance {
 public:
  explicit Instance(InstanceOptions opts = InstanceOptions::from_env());
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  VkInstance handle() const { return instance_; }
  const std::vector<DeviceInfo>& devices() const { return devices_; }
  bool validation() const { return validation_; }

  // Picks a device: `spec` is an index or a case-insensitive substring of the name; without one,
  // VKMIND_DEVICE, else the best type (discrete, integrated, virtual, CPU). Throws naming the choices.
  const DeviceInfo& select(std::optional<std::string> spec = std::nullopt) const;

  // Validation errors and warnings seen by the debug messenger since start, process-wide.
  static uint64_t validation_messages();

 private:
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  bool validation_ = false;
  std::vector<DeviceInfo> devices_;
};

}  // namespace vkm
