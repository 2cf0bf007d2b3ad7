#include "model/io/float_codec.hpp"

#include <bit>
#include <cassert>
#include <cstring>

namespace vkm::io {

static_assert(std::endian::native == std::endian::little, "file formats are little-endian; so is every host we run on");

void decode_floats(DType t, std::span<const uint8_t> bytes, std::span<float> out) {
  assert(is_float_dtype(t) && bytes.size() >= out.size() * dtype_size(t));
  if (t == DType::f32) {
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * 4);
    return;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    out[i] = t == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
}

std::vector<uint8_t> encode_floats(DType t, std::span<const float> values) {
  assert(is_float_dtype(t));
  std::vector<uint8_t> bytes(values.size() * dtype_size(t));
  if (t == DType::f32) {
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = t == DType::f16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
    std::memcpy(bytes.data() + 2 * i, &h, 2);
  }
  return bytes;
}

}  // namespace vkm::io
