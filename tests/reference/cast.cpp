#include "tests/reference/cast.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace vkm::ref {

namespace {

void require_float(DType t) {
  if (t != DType::f32 && t != DType::f16 && t != DType::bf16)
    throw std::invalid_argument("ref: only f32, f16 and bf16 are float dtypes");
}

double round_to(double x, DType t) {
  return t == DType::f32 ? round_f32(x) : t == DType::f16 ? round_f16(x) : round_bf16(x);
}

// x holds an f16 value (or NaN).
uint16_t f16_bits(double x) {
  uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double a = std::fabs(x);
  if (std::isnan(x)) return sign | 0x7e00;
  if (std::isinf(x)) return sign | 0x7c00;
  if (a < 0x1p-14) return sign | uint16_t(a * 0x1p24);  // subnormal or zero: a multiple of 2^-24
  int e;
  double f = std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  return sign | uint16_t((e + 14) << 10) | uint16_t((2 * f - 1) * 1024);
}

double f16_value(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double a = e == 31 ? (m ? NAN : INFINITY) : e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -a : a;
}

}  // namespace

Vec cast(const Vec& x, DType to) {
  require_float(to);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = round_to(x[i], to);
  return y;
}

// Element bytes are copied from host integers: host and devices are little-endian alike.
std::vector<uint8_t> store(const Vec& x, DType t) {
  require_float(t);
  const size_t width = dtype_size(t);
  std::vector<uint8_t> bytes(x.size() * width);
  for (size_t i = 0; i < x.size(); ++i) {
    double r = round_to(x[i], t);
    uint32_t f32 = std::bit_cast<uint32_t>(float(r));  // exact: every f16 and bf16 value is an fp32 value
    uint32_t bits = t == DType::f32 ? f32 : t == DType::bf16 ? f32 >> 16 : f16_bits(r);
    std::memcpy(&bytes[i * width], &bits, width);
  }
  return bytes;
}

Vec load(const std::vector<uint8_t>& bytes, DType t) {
  require_float(t);
  const size_t width = dtype_size(t);
  Vec x(bytes.size() / width);
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t bits = 0;
    std::memcpy(&bits, &bytes[i * width], width);
    x[i] = t == DType::f32    ? std::bit_cast<float>(bits)
           : t == DType::bf16 ? std::bit_cast<float>(bits << 16)
                              : f16_value(uint16_t(bits));
  }
  return x;
}

}  // namespace vkm::ref
