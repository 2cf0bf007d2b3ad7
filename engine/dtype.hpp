#pragma once
// Element types of tensors. bf16 is stored as a 16-bit pattern and converted with bit shifts,
// so it needs no device feature beyond 16-bit storage.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vkm {

enum class DType : uint8_t { f32, f16, bf16, i32, u32 };

constexpr size_t dtype_size(DType t) { return (t == DType::f16 || t == DType::bf16) ? 2 : 4; }
std::string_view dtype_name(DType t);

// Host conversions, round to nearest even; NaN stays NaN, overflow gives infinity.
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t b);

// The 32-bit pattern that fills one element of type t with value v (16-bit types in the low half).
uint32_t fill_pattern(DType t, double v);

}  // namespace vkm
