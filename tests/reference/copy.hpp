#pragma once
#include <cstdint>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {
// dst with dst[r*dst_ld + c] = src[r*src_ld + c] for r < rows, c < cols; everything else as given.
Vec copy_2d(const Vec& src, Vec dst, int64_t rows, int64_t cols, int64_t src_ld, int64_t dst_ld);
}
