#pragma once
// The SPIR-V of every shader variant, embedded at build time (see shaders/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace vkm::spirv {

struct Module {
  const char* name;  // "<stem>" or "<stem>.<variant>"
  const uint32_t* words;
  size_t count;
};

std::span<const Module> all();

inline const Module* find(std::string_view name) {
  for (const Module& m : all())
    if (name == m.name) return &m;
  return nullptr;
}

}  // namespace vkm::spirv
