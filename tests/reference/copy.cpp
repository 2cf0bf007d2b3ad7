#include "tests/reference/copy.hpp"

namespace vkm::ref {

Vec copy_2d(const Vec& src, Vec dst, int64_t rows, int64_t cols, int64_t src_ld, int64_t dst_ld) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst.at(r * dst_ld + c) = src.at(r * src_ld + c);
  return dst;
}

}  // namespace vkm::ref
