#pragma once
// A tensor is a typed view (dtype, shape, byte offset) into a buffer owned by an Arena.
// Views are cheap values: slicing and reshaping never copy or allocate.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/dtype.hpp"

namespace vkm {

class Buffer;
using Shape = std::vector<int64_t>;

struct Tensor {
  Buffer* buffer = nullptr;
  uint64_t offset = 0;  // bytes from the start of the buffer
  DType dtype = DType::f32;
  Shape shape;

  int64_t numel() const;
  uint64_t bytes() const { return uint64_t(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  int rank() const { return int(shape.size()); }
  explicit operator bool() const { return buffer != nullptr; }

  // numel() elements starting at element `start`, as `shape`; throws if it runs past this view.
  Tensor view(int64_t start, Shape shape) const;
  Tensor reshape(Shape shape) const;  // same elements, another shape
  Tensor flat() const { return reshape({numel()}); }
  // Reinterprets the bytes as another dtype of the same element size.
  Tensor as(DType t) const;

  bool overlaps(const Tensor& o) const;
  std::string describe() const;  // "f32[4,7] @buffer+offset" for error messages
};

std::string shape_string(const Shape& s);

}  // namespace vkm
