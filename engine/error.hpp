#pragma once
// Errors that reach the user: each names what failed and why, never just a VkResult number.
#include <stdexcept>
#include <string>

#include <volk.h>

namespace vkm {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* vk_result_name(VkResult r);

[[noreturn]] void throw_vk(VkResult r, const char* call, const char* file, int line);

}  // namespace vkm

#define VKM_CHECK(call)                                                  \
  do {                                                                   \
    VkResult vkm_r_ = (call);                                            \
    if (vkm_r_ != VK_SUCCESS) ::vkm::throw_vk(vkm_r_, #call, __FILE__, __LINE__); \
  } while (0)
