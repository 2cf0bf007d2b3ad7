#pragma once
// Float tensors as file bytes: f32, f16 and bf16, little-endian, at any alignment (file data need not be
// aligned for the element type), converted with the engine's round-to-nearest-even host conversions.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/dtype.hpp"

namespace vkm::io {

// True for the dtypes these functions take.
constexpr bool is_float_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

// out.size() elements from `bytes` (which must hold out.size() * dtype_size(t) bytes) of float dtype t.
void decode_floats(DType t, std::span<const uint8_t> bytes, std::span<float> out);
// The bytes of `values` stored as float dtype t.
std::vector<uint8_t> encode_floats(DType t, std::span<const float> values);

}  // namespace vkm::io
