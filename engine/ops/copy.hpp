#pragma once
#include <cstdint>

#include "engine/program.hpp"

namespace vkm::ops {
// dst = src, bit for bit: equal element counts and element sizes (the dtypes may differ), no overlap.
void copy(Program& p, const Tensor& src, const Tensor& dst);

// dst[r*dst_ld + c] = src[r*src_ld + c] for r < rows, c < cols, counted in elements from each view's start;
// the rest of dst is untouched. For slicing and concatenating heads and writing a KV cache. Equal element
// sizes; dst rows must not overlap (dst_ld >= cols), src rows may (src_ld 0 repeats one row); the two
// regions must not overlap. Views need not start at an aligned offset.
void copy_2d(Program& p, const Tensor& src, const Tensor& dst, int64_t rows, int64_t cols, int64_t src_ld,
             int64_t dst_ld);
}  // namespace vkm::ops
