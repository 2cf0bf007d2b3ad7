#pragma once
// GGUF (version 3, as llama.cpp reads and writes it; ggml's docs/gguf.md), little-endian throughout:
//   "GGUF", u32 version, u64 tensor count, u64 metadata count
//   metadata: string key, u32 value type, value (strings are u64 length + bytes; arrays are u32 element
//             type + u64 count + elements)
//   tensor infos: string name, u32 n_dims, u64 ne[n_dims] (innermost dimension first), u32 ggml type,
//             u64 offset from the start of the data
//   zero padding to general.alignment (32 when absent), then the data: each tensor at its offset, which is
//   the previous tensor's end rounded up to the alignment.
// vkmind writes and reads F32, F16, BF16 and Q8_0 tensors; other ggml types are refused by name.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tensor.hpp"
#include "model/io/mapped_file.hpp"

namespace vkm::io {

// The metadata value types, numbered as the format numbers them.
enum class GgufType : uint32_t { u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
                                 string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12 };
std::string_view gguf_type_name(GgufType t);

// One metadata value. Integers are held in `uint` (unsigned types and bool) or `sint` (signed types),
// floats in `real`, whatever their width in the file; arrays hold scalars or strings (never arrays).
struct GgufValue {
  GgufType type = GgufType::u32;
  uint64_t uint = 0;
  int64_t sint = 0;
  double real = 0;
  std::string str;
  GgufType elem = GgufType::u32;  // arrays: the element type
  std::vector<GgufValue> items;   // arrays

  static GgufValue u32(uint32_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue strings(std::vector<std::string> v);
  static GgufValue i32s(const std::vector<int32_t>& v);
};
using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// Tensor types, numbered as ggml numbers them.
enum class GgmlType : uint32_t { f32 = 0, f16 = 1, q8_0 = 8, bf16 = 30 };
std::string_view ggml_type_name(GgmlType t);  // "F32", "F16", "Q8_0", "BF16"
// Q8_0 packs blocks of 32 values as an f16 scale d = max|x| / 127 and 32 int8 q = round(x / d).
inline constexpr int64_t kQ8Block = 32;
// Bytes of `n` values of type t (for Q8_0, n must be a multiple of kQ8Block).
uint64_t ggml_bytes(GgmlType t, uint64_t n);
std::vector<uint8_t> quantize_q8_0(std::span<const float> values);  // values.size() % kQ8Block == 0
// `bytes` must hold ggml_bytes(t, out.size()) bytes.
void dequantize(GgmlType t, std::span<const uint8_t> bytes, std::span<float> out);

struct GgufTensor {
  std::string name;
  GgmlType type;
  Shape shape;                     // outermost dimension first, as PyTorch (the file stores it reversed)
  std::span<const uint8_t> bytes;  // ggml_bytes(type, numel)
};

// Writes a GGUF v3 file: metadata in the given order, then tensor infos and data in the given order, aligned
// to the metadata's general.alignment (a u32 power of two) or 32. Throws vkm::Error naming the path on I/O
// failure (checked after closing) and naming the tensor whose bytes do not match its type and shape.
void write_gguf(const std::filesystem::path& path, const GgufMetadata& metadata, const std::vector<GgufTensor>& tensors);

class GgufFile {
 public:
  // Maps and checks the file as llama.cpp does: magic, version 2 or 3, counts that fit the file, every
  // string and array within it, known value types, unique keys and tensor names, at most 4 dimensions, known
  // tensor types with whole blocks per row, offsets in order and aligned, data inside the file. Errors read
  // "PATH: what" and name the key or tensor.
  static GgufFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // bytes from the start of the file
  const GgufMetadata& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;  // null when absent

  // Typed lookups; a missing key or another type is an error naming the key. get_uint takes any integer
  // type holding a non-negative value; get_float any float or integer type.
  uint64_t get_uint(std::string_view key) const;
  double get_float(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  // An array of `elem` values (strings, or integers of any type as int64).
  std::vector<std::string> get_strings(std::string_view key) const;
  std::vector<int64_t> get_ints(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;  // null when absent
  std::vector<float> read_f32(const GgufTensor& t) const;      // dequantized

 private:
  const GgufValue& get(std::string_view key) const;
  [[noreturn]] void fail_key(std::string_view key, const std::string& what) const;

  MappedFile file_;
  uint32_t version_ = 0, alignment_ = 32;
  uint64_t data_offset_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensor> tensors_;
};

}  // namespace vkm::io
