#pragma once
// safetensors (https://github.com/huggingface/safetensors), the format of Hugging Face model weights:
//   8 bytes      N, the header size, unsigned little-endian
//   N bytes      a JSON object: {"__metadata__": {string: string}, NAME: {"dtype": "F32", "shape": [..],
//                "data_offsets": [BEGIN, END]}, ...}, starting with '{', padded with spaces (0x20)
//   the rest     the data: each tensor's bytes at [BEGIN, END) from the start of the data, row-major,
//                little-endian; the tensors cover the data exactly, with no gaps and no overlaps.
// vkmind reads and writes F32, F16, BF16, I32 and U32 tensors; the other dtypes of the format are refused
// by name.
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tensor.hpp"
#include "model/io/mapped_file.hpp"

namespace vkm::io {

struct TensorRecord {
  std::string name;
  DType dtype;
  Shape shape;
  std::span<const uint8_t> bytes;  // numel * dtype_size bytes
};

// The format's name of a dtype ("F32", "F16", "BF16", "I32", "U32").
std::string_view safetensors_dtype_name(DType t);

// Streams a safetensors file: the header (the "__metadata__" map first when it is non-empty, then the
// tensors in the given order, padded with spaces to a multiple of 8 bytes), then each tensor's bytes in
// the given order, each tensor's data_offsets following the previous one's. Writes `path` directly (callers
// that need atomicity write into a temporary folder). Throws vkm::Error naming the path on I/O failure (a
// full disk included: the stream is checked after closing) and naming the tensor when its byte count does
// not match its shape or its name repeats.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorRecord>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

class SafetensorsFile {
 public:
  // Maps the file and checks everything the specification implies: the header size within the file, a
  // JSON object starting with '{', known dtypes, shape·dtype size equal to the data_offsets span, offsets
  // inside the data, covering it in order with no gaps or overlaps, unique names, string metadata.
  // Errors read "PATH: what, tensor NAME".
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  // In the order of their data; bytes point into the mapping, valid while this object (or a move) lives.
  const std::vector<TensorRecord>& tensors() const { return tensors_; }
  const TensorRecord* find(std::string_view name) const;  // null when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The values of an F32, F16 or BF16 tensor as f32; other dtypes: an error naming the tensor.
  std::vector<float> read_f32(const TensorRecord& t) const;

 private:
  MappedFile file_;
  std::vector<TensorRecord> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace vkm::io
