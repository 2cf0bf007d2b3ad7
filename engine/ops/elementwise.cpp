#include "engine/ops/elementwise.hpp"

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// Tensors of one dtype, f32 or (where `f16_too`) f16, of equal element count.
void check(const char* op, bool f16_too, std::initializer_list<const Tensor*> inputs, const Tensor& out) {
  const bool type_ok = out.dtype == DType::f32 || (f16_too && out.dtype == DType::f16);
  for (const Tensor* t : inputs) {
    if (!type_ok || t->dtype != out.dtype || t->numel() != out.numel())
      throw Error(std::string(op) + ": needs " + (f16_too ? "f32 or f16" : "f32") +
                  " tensors of one dtype and equal element count, given " + t->describe() + " and " + out.describe());
    // The very same range is in place and safe; a shifted one would read elements already overwritten.
    if (out.overlaps(*t) && out.offset != t->offset)
      throw Error(std::string(op) + ": output " + out.describe() + " partly overlaps input " + t->describe());
  }
}

// Dispatches `k` once per bindable piece of the flat tensors; the output is the last binding.
template <class Push>
void run_pieces(Program& p, const Kernel& k, std::initializer_list<const Tensor*> inputs, const Tensor& out,
                Push push) {
  for_each_piece(p.context(), out.numel(), uint32_t(dtype_size(out.dtype)), [&](int64_t start, int64_t count) {
    std::vector<Binding> bindings;
    for (const Tensor* t : inputs) bindings.push_back(in(t->flat().view(start, {count})));
    bindings.push_back(vkm::out(out.flat().view(start, {count})));
    push.n = uint32_t(count);
    p.dispatch(k, std::move(bindings), push, stride_groups(count));
  });
}

}  // namespace

void add(Program& p, const Tensor& a, const Tensor& b, const Tensor& out) {
  check("add", true, {&a, &b}, out);
  const bool f16 = out.dtype == DType::f16;
  if (f16) require_16bit(p.context(), "add");
  struct Push {
    uint32_t n;
  };
  const Kernel& k =
      p.context().kernel({f16 ? "elementwise.add_f16" : "elementwise.add", 3, sizeof(Push), {kGroupSize}});
  run_pieces(p, k, {&a, &b}, out, Push{});
}

void scale(Program& p, const Tensor& x, float alpha, const Tensor& out) {
  check("scale", false, {&x}, out);
  struct Push {
    uint32_t n;
    float alpha;
  };
  const Kernel& k = p.context().kernel({"elementwise.scale", 2, sizeof(Push), {kGroupSize}});
  run_pieces(p, k, {&x}, out, Push{0, alpha});
}

}  // namespace vkm::ops
