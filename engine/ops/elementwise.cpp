#include "engine/ops/elementwise.hpp"

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// Tensors of one dtype, f32 or (where `half_too`) f16 or bf16, of equal element count.
void check(const char* op, bool half_too, std::initializer_list<const Tensor*> inputs, const Tensor& out) {
  const bool type_ok = out.dtype == DType::f32 || (half_too && is_float(out.dtype));
  for (const Tensor* t : inputs) {
    if (!type_ok || t->dtype != out.dtype || t->numel() != out.numel())
      throw Error(std::string(op) + ": needs " + (half_too ? "f32, f16 or bf16" : "f32") +
                  " tensors of one dtype and equal element count, given " + t->describe() + " and " + out.describe());
    // The very same range is in place and safe; a shifted one would read elements already overwritten.
    if (out.overlaps(*t) && out.offset != t->offset)
      throw Error(std::string(op) + ": output " + out.describe() + " partly overlaps input " + t->describe());
  }
}

// The push constants of the whole family: how many elements, the skip of each binding, scale's factor.
struct Push {
  uint32_t n, skip[3];
  float alpha;
};

// Dispatches `k` once per bindable piece of the flat tensors, each bound from the aligned offset below it
// (so views may start anywhere); the output is the last binding.
void run_pieces(Program& p, const Kernel& k, std::initializer_list<const Tensor*> inputs, const Tensor& out,
                float alpha) {
  const Context& ctx = p.context();
  for_each_piece(ctx, out.numel(), uint32_t(dtype_size(out.dtype)), [&](int64_t start, int64_t count) {
    Push push{uint32_t(count), {0, 0, 0}, alpha};
    std::vector<Binding> bindings;
    for (const Tensor* t : inputs) {
      auto [span, skip] = aligned_span(ctx, *t, start, count);
      push.skip[bindings.size()] = skip;
      bindings.push_back(in(span));
    }
    auto [span, skip] = aligned_span(ctx, out, start, count);
    push.skip[2] = skip;
    bindings.push_back(vkm::out(span));
    p.dispatch(k, std::move(bindings), push, stride_groups(count));
  });
}

}  // namespace

void add(Program& p, const Tensor& a, const Tensor& b, const Tensor& out) {
  check("add", true, {&a, &b}, out);
  require_storage(p.context(), out.dtype, "add");
  const std::string variant =
      out.dtype == DType::f32 ? "elementwise.add" : "elementwise.add_" + std::string(dtype_name(out.dtype));
  const Kernel& k = p.context().kernel({variant, 3, sizeof(Push), {kGroupSize}});
  run_pieces(p, k, {&a, &b}, out, 0.0f);
}

void scale(Program& p, const Tensor& x, float alpha, const Tensor& out) {
  check("scale", false, {&x}, out);
  const Kernel& k = p.context().kernel({"elementwise.scale", 2, sizeof(Push), {kGroupSize}});
  run_pieces(p, k, {&x}, out, alpha);
}

}  // namespace vkm::ops
