#include "engine/tensor.hpp"

#include "engine/error.hpp"
#include "engine/memory.hpp"

namespace vkm {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype)) + shape_string(shape) + " @" + (buffer ? buffer->name() : "null") + "+" +
         std::to_string(offset);
}

Tensor Tensor::view(int64_t start, Shape s) const {
  Tensor t{buffer, offset + uint64_t(start) * dtype_size(dtype), dtype, std::move(s)};
  for (int64_t d : t.shape)
    if (d < 0) throw Error("negative dimension in view " + shape_string(t.shape) + " of " + describe());
  if (start < 0 || start + t.numel() > numel())
    throw Error("view of " + std::to_string(t.numel()) + " elements at " + std::to_string(start) +
                " runs past " + describe());
  return t;
}

Tensor Tensor::reshape(Shape s) const {
  Tensor t{buffer, offset, dtype, std::move(s)};
  if (t.numel() != numel())
    throw Error("cannot reshape " + describe() + " to " + shape_string(t.shape) + ": element counts differ");
  return t;
}

Tensor Tensor::as(DType d) const {
  if (dtype_size(d) != dtype_size(dtype))
    throw Error("cannot reinterpret " + describe() + " as " + std::string(dtype_name(d)) + ": element sizes differ");
  return Tensor{buffer, offset, d, shape};
}

bool Tensor::overlaps(const Tensor& o) const {
  return buffer == o.buffer && offset < o.offset + o.bytes() && o.offset < offset + bytes();
}

}  // namespace vkm
