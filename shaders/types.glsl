// For kernels that store 16-bit types: the extensions, and conversions between stored types and fp32.
// Only included where used, so 32-bit kernels need no 16-bit device features.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
// Kernels that store only bf16 define NO_FLOAT16 first: they then need no fp16 arithmetic from the device.
#ifndef NO_FLOAT16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

// bf16 is the high half of an fp32; rounding to nearest even, NaN kept quiet.
float bf16_to_f32(uint16_t b) { return uintBitsToFloat(uint(b) << 16); }
uint16_t f32_to_bf16(float f) {
  uint x = floatBitsToUint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

#ifndef NO_FLOAT16
// f16 <-> fp32 in integer arithmetic, round to nearest even: a device's own conversions may flush f16
// subnormals or round otherwise, and these give the same bits everywhere.
float f16_to_f32_exact(float16_t h) {
  uint x = uint(float16BitsToUint16(h));
  uint sign = (x & 0x8000u) << 16, e = (x >> 10) & 0x1fu, m = x & 0x3ffu;
  if (e == 31u) return uintBitsToFloat(sign | 0x7f800000u | (m << 13));  // inf, NaN
  if (e != 0u) return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
  if (m == 0u) return uintBitsToFloat(sign);
  // Subnormal m * 2^-24 is normal in fp32: its leading bit becomes the implicit one.
  int lead = findMSB(m);
  return uintBitsToFloat(sign | (uint(lead + 103) << 23) | ((m << (23 - lead)) & 0x7fffffu));
}
float16_t f32_to_f16_exact(float f) {
  uint x = floatBitsToUint(f);
  uint sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu, h;
  if (a > 0x7f800000u) {
    h = 0x7e00u | ((a >> 13) & 0x3ffu);  // NaN, kept quiet
  } else if (a >= 0x38800000u) {
    // Normal in f16, or too large: rebias the exponent (127 -> 15) and round off 13 bits. A carry into the
    // exponent gives the right result; anything that rounds past 65504 (infinity included) clamps to inf.
    uint r = a - 0x38000000u;
    h = min((r + 0xfffu + ((r >> 13) & 1u)) >> 13, 0x7c00u);
  } else {
    // Subnormal in f16: the value in units of 2^-24 is the significand shifted right by 126 - exponent;
    // from a shift of 25 on (fp32 subnormals too) it is below half a unit and rounds to zero.
    uint shift = 126u - (a >> 23);
    h = 0u;
    if (shift <= 24u) {
      uint m = (a & 0x7fffffu) | 0x800000u, rem = m & ((1u << shift) - 1u), tie = 1u << (shift - 1u);
      h = m >> shift;
      h += uint(rem > tie || (rem == tie && (h & 1u) != 0u));
    }
  }
  return uint16BitsToFloat16(uint16_t(sign | h));
}
#endif  // NO_FLOAT16
