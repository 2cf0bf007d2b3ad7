#include "engine/instance.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/error.hpp"

namespace vkm {

namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";
std::atomic<uint64_t> g_validation_messages{0};

VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                VkDebugUtilsMessageTypeFlagsEXT,
                                                const VkDebugUtilsMessengerCallbackDataEXT* data, void*) {
  if (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)) {
    ++g_validation_messages;
    std::fprintf(stderr, "[vulkan validation] %s\n", data->pMessage);
  }
  return VK_FALSE;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

}  // namespace

InstanceOptions InstanceOptions::from_env() {
  InstanceOptions o;
  const char* v = std::getenv("VKMIND_VALIDATION");
  if (v && *v && std::strcmp(v, "0") != 0) o.validation = true;
  const char* layers = std::getenv("VK_INSTANCE_LAYERS");
  if (layers && std::strstr(layers, kValidationLayer)) o.validation = true;
  return o;
}

uint64_t Instance::validation_messages() { return g_validation_messages.load(); }

Instance::Instance(InstanceOptions opts) {
  if (volkInitialize() != VK_SUCCESS)
    throw Error("no Vulkan loader found (libvulkan.so.1): install libvulkan1 and a driver, e.g. mesa-vulkan-drivers");
  uint32_t loader_version = volkGetInstanceVersion();
  if (loader_version < VK_API_VERSION_1_2)
    throw Error("the Vulkan loader is older than 1.2; vkmind needs Vulkan 1.2");

  uint32_t n = 0;
  vkEnumerateInstanceLayerProperties(&n, nullptr);
  std::vector<VkLayerProperties> layers(n);
  vkEnumerateInstanceLayerProperties(&n, layers.data());
  bool have_validation = std::any_of(layers.begin(), layers.end(),
                                     [](auto& l) { return std::strcmp(l.layerName, kValidationLayer) == 0; });
  vkEnumerateInstanceExtensionProperties(nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> exts(n);
  vkEnumerateInstanceExtensionProperties(nullptr, &n, exts.data());
  auto have_ext = [&](const char* name) {
    return std::any_of(exts.begin(), exts.end(), [&](auto& e) { return std::strcmp(e.extensionName, name) == 0; });
  };

  std::vector<const char*> enabled_layers, enabled_exts;
  if (opts.validation) {
    if (!have_validation)
      throw Error(std::string("validation was asked for (VKMIND_VALIDATION or VK_INSTANCE_LAYERS) but ") +
                  kValidationLayer + " is not installed: apt-get install vulkan-validationlayers");
    enabled_layers.push_back(kValidationLayer);
    validation_ = true;
  }
  // The messenger also catches messages when the layer came in through VK_INSTANCE_LAYERS.
  bool debug_utils = validation_ && have_ext(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  if (debug_utils) enabled_exts.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  VkInstanceCreateFlags flags = 0;
  if (have_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
    enabled_exts.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
    flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
  }

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "vkmind";
  app.pEngineName = "vkmind";
  app.apiVersion = std::min(loader_version, uint32_t(VK_API_VERSION_1_3));
  VkDebugUtilsMessengerCreateInfoEXT dbg{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  dbg.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  dbg.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  dbg.pfnUserCallback = on_debug_message;

  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pNext = debug_utils ? &dbg : nullptr;  // also covers vkCreateInstance itself
  ci.flags = flags;
  ci.pApplicationInfo = &app;
  ci.enabledLayerCount = uint32_t(enabled_layers.size());
  ci.ppEnabledLayerNames = enabled_layers.data();
  ci.enabledExtensionCount = uint32_t(enabled_exts.size());
  ci.ppEnabledExtensionNames = enabled_exts.data();
  VKM_CHECK(vkCreateInstance(&ci, nullptr, &instance_));
  // Device functions go through the loader's trampolines, so several devices can live in one process.
  volkLoadInstance(instance_);
  if (debug_utils) VKM_CHECK(vkCreateDebugUtilsMessengerEXT(instance_, &dbg, nullptr, &messenger_));

  vkEnumeratePhysicalDevices(instance_, &n, nullptr);
  std::vector<VkPhysicalDevice> pds(n);
  vkEnumeratePhysicalDevices(instance_, &n, pds.data());
  for (uint32_t i = 0; i < n; ++i) devices_.push_back(probe_device(instance_, pds[i], i));
}

Instance::~Instance() {
  if (messenger_) vkDestroyDebugUtilsMessengerEXT(instance_, messenger_, nullptr);
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

const DeviceInfo& Instance::select(std::optional<std::string> spec) const {
  if (devices_.empty())
    throw Error("no Vulkan device found: install a driver (mesa-vulkan-drivers gives the CPU device lavapipe)");
  if (!spec) {
    if (const char* env = std::getenv("VKMIND_DEVICE"); env && *env) spec = env;
  }
  if (spec) {
    const std::string& s = *spec;
    if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
      size_t i = std::stoul(s);
      if (i < devices_.size()) return devices_[i];
    } else {
      for (auto& d : devices_)
        if (lower(d.name).find(lower(s)) != std::string::npos) return d;
    }
    std::string names;
    for (auto& d : devices_) names += "\n  " + std::to_string(d.index) + ": " + d.name;
    throw Error("no Vulkan device matches VKMIND_DEVICE / --device '" + s + "'; the devices are:" + names);
  }
  const DeviceInfo* best = &devices_[0];
  for (auto& d : devices_)
    if (device_rank(d.vk_type) < device_rank(best->vk_type)) best = &d;
  return *best;
}

}  // namespace vkm
