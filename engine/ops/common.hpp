#pragma once
// What op wrappers share: workgroup sizing for grid-stride kernels and splitting tensors that exceed
// the device's maxStorageBufferRange into bindable pieces.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>

#include "engine/context.hpp"
#include "engine/error.hpp"
#include "engine/program.hpp"

namespace vkm::ops {

constexpr uint32_t kGroupSize = 256;

// Workgroups for a grid-stride loop over n items: enough to fill any device, within dispatch limits.
inline uint32_t stride_groups(int64_t n, uint32_t group = kGroupSize) {
  return uint32_t(std::clamp<int64_t>((n + group - 1) / group, 1, 8192));
}

// Calls fn(start, count) over [0, n) in pieces whose bytes (at `elem_bytes` per element, the widest
// bound type) fit one binding even when bound from the aligned offset below a view's start (aligned_span).
// Pieces are whole multiples of 4096 elements, so the starts of pieces of an aligned tensor stay aligned
// beyond any device's storage offset alignment (Vulkan's 128 MiB minimum range keeps pieces non-empty).
inline void for_each_piece(const Context& ctx, int64_t n, uint32_t elem_bytes,
                           const std::function<void(int64_t start, int64_t count)>& fn) {
  const DeviceInfo& d = ctx.info();
  int64_t piece = int64_t((d.max_storage_buffer_range - d.min_storage_offset_alignment) / elem_bytes) / 4096 * 4096;
  for (int64_t start = 0; start < n; start += piece) fn(start, std::min(piece, n - start));
}

// The elements [first, first + count) of t, bound from the storage-aligned offset at or below them, and
// how many elements precede `first` in that binding: the shader adds this skip to its indices. This is how
// ops take views that start anywhere (one head of a tensor, a row of a cache).
inline std::pair<Tensor, uint32_t> aligned_span(const Context& ctx, const Tensor& t, int64_t first, int64_t count) {
  uint64_t width = dtype_size(t.dtype);
  uint64_t begin = t.offset + uint64_t(first) * width;
  uint64_t skip = begin % ctx.info().min_storage_offset_alignment / width;
  return {Tensor{t.buffer, begin - skip * width, t.dtype, {int64_t(skip) + count}}, uint32_t(skip)};
}

// 16-bit tensors need storageBuffer16BitAccess, with 16-bit int and float arithmetic for the conversions.
inline bool has_16bit(const DeviceInfo& d) { return d.storage_16bit && d.shader_int16 && d.shader_float16; }
inline bool has_16bit(const Context& ctx) { return has_16bit(ctx.info()); }

inline void require_16bit(const Context& ctx, const char* op) {
  const DeviceInfo& d = ctx.info();
  if (!has_16bit(ctx))
    throw Error(std::string(op) + " on 16-bit tensors needs storageBuffer16BitAccess, shaderInt16 and shaderFloat16, "
                "which device '" + d.name + "' lacks; use f32 tensors");
}

// bf16 tensors are 16-bit patterns converted with integer shifts: 16-bit storage and int16 arithmetic, no fp16.
inline bool has_bf16(const Context& ctx) {
  const DeviceInfo& d = ctx.info();
  return d.storage_16bit && d.shader_int16;
}

inline void require_bf16(const Context& ctx, const char* op) {
  if (!has_bf16(ctx))
    throw Error(std::string(op) + " on bf16 tensors needs storageBuffer16BitAccess and shaderInt16, which device '" +
                ctx.info().name + "' lacks; use f32 tensors");
}

// Activation ops store f32, f16 or bf16: whether the device can hold tensors of `t`, and the check that says
// which features it lacks.
inline bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }
inline bool has_storage(const Context& ctx, DType t) {
  return t == DType::f16 ? has_16bit(ctx) : t == DType::bf16 ? has_bf16(ctx) : true;
}
inline void require_storage(const Context& ctx, DType t, const char* op) {
  if (t == DType::f16) require_16bit(ctx, op);
  if (t == DType::bf16) require_bf16(ctx, op);
}

}  // namespace vkm::ops
