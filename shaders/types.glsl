// For kernels that store 16-bit types: the extensions, and conversions between stored types and fp32.
// Only included where used, so 32-bit kernels need no 16-bit device features.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

// bf16 is the high half of an fp32; rounding to nearest even, NaN kept quiet.
float bf16_to_f32(uint16_t b) { return uintBitsToFloat(uint(b) << 16); }
uint16_t f32_to_bf16(float f) {
  uint x = floatBitsToUint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
