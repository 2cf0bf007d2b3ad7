#pragma once
// A whole file mapped read-only into memory: the readers of safetensors and GGUF parse it in place, so
// opening a multi-gigabyte model reads only the pages its tensors touch.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

namespace vkm::io {

class MappedFile {
 public:
  // Throws vkm::Error naming the path when it cannot be opened or mapped. An empty file maps to no bytes.
  static MappedFile open(const std::filesystem::path& path);

  std::span<const uint8_t> bytes() const;
  const std::filesystem::path& path() const;

 private:
  struct Mapping;  // munmaps when the last copy goes
  std::shared_ptr<const Mapping> map_;
};

}  // namespace vkm::io
