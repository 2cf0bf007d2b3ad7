#include "engine/ops/swiglu.hpp"

#include <algorithm>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// A [rows, cols] matrix inside tensor t: element (r, c) is t's element first + r * ld + c.
struct Strided {
  Tensor t;
  int64_t first, ld;
};

std::string describe_all(std::initializer_list<std::pair<const char*, const Tensor*>> named) {
  std::string s;
  for (auto [name, t] : named) s += std::string(s.empty() ? "" : ", ") + name + " " + t->describe();
  return s;
}

// Same dtype (f32, f16 or bf16) everywhere; each output either is exactly an input or touches nothing else.
void check(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> inputs,
           std::initializer_list<std::pair<const char*, const Tensor*>> outputs, Context& ctx) {
  const DType type = inputs.begin()->second->dtype;
  for (auto group : {inputs, outputs})
    for (auto [name, t] : group)
      if (t->dtype != type || !is_float(type) || t->numel() == 0)
        throw Error(std::string(op) + ": wants non-empty tensors, all f32, all f16 or all bf16; " + name + " is " +
                    t->describe());
  for (auto o = outputs.begin(); o != outputs.end(); ++o) {
    for (auto [name, t] : inputs)
      if (o->second->overlaps(*t) && (o->second->offset != t->offset || o->second->bytes() != t->bytes()))
        throw Error(std::string(op) + ": output " + o->first + " " + o->second->describe() + " partly overlaps " +
                    name + " " + t->describe());
    for (auto other = o + 1; other != outputs.end(); ++other)
      if (o->second->overlaps(*other->second))
        throw Error(std::string(op) + ": outputs " + o->first + " " + o->second->describe() + " and " + other->first +
                    " " + other->second->describe() + " overlap");
  }
  require_storage(ctx, type, op);
}

// Leading dims of a [..., last] tensor.
Shape leading(const Tensor& t) { return Shape(t.shape.begin(), t.shape.end() - 1); }

// One dispatch per piece of rows whose bindings all fit maxStorageBufferRange. `m` holds gate, up, then h
// (forward) or dh, dgate, dup (backward); gate, up, dgate and dup share one row stride, h and dh have cols.
void dispatch_rows(Program& p, bool forward, int64_t rows, int64_t cols, const std::vector<Strided>& m) {
  Context& ctx = p.context();
  const DeviceInfo& d = ctx.info();
  const int64_t width = int64_t(dtype_size(m[0].t.dtype));
  const int64_t budget = int64_t(d.max_storage_buffer_range - d.min_storage_offset_alignment) / width;
  if (2 * cols > budget) throw Error("swiglu: rows of " + std::to_string(cols) + " elements are too long to bind");
  int64_t piece = rows;
  for (const Strided& s : m) piece = std::min(piece, (budget - cols) / s.ld + 1);

  struct Push {
    uint32_t rows, cols, ld, gate_skip, up_skip, h_skip, dgate_skip, dup_skip;
  };
  const std::string variant = std::string("swiglu.") + (forward ? "forward_" : "backward_") +
                              std::string(dtype_name(m[0].t.dtype));
  const Kernel& k = ctx.kernel({variant, uint32_t(m.size()), sizeof(Push), {kGroupSize}});
  for (int64_t r0 = 0; r0 < rows; r0 += piece) {
    const int64_t n = std::min(piece, rows - r0);
    std::vector<Binding> bindings;
    uint32_t skips[5] = {};
    for (size_t i = 0; i < m.size(); ++i) {
      auto [span, skip] = aligned_span(ctx, m[i].t, m[i].first + r0 * m[i].ld, (n - 1) * m[i].ld + cols);
      bindings.push_back(i < (forward ? 2u : 3u) ? in(span) : out(span));
      skips[i] = skip;
    }
    // Forward binds gate, up, h; backward gate, up, dh, dgate, dup: the push names follow the shader's.
    const Push push{uint32_t(n), uint32_t(cols), uint32_t(m[0].ld), skips[0], skips[1], skips[2], skips[3], skips[4]};
    p.dispatch(k, std::move(bindings), push, stride_groups(n * cols), 1, 1, variant);
  }
}

}  // namespace

void swiglu(Program& p, const Tensor& gate, const Tensor& up, const Tensor& h) {
  if (gate.rank() < 1 || up.shape != gate.shape || h.shape != gate.shape)
    throw Error("swiglu: gate, up and h must have one shape, given " +
                describe_all({{"gate", &gate}, {"up", &up}, {"h", &h}}));
  check("swiglu", {{"gate", &gate}, {"up", &up}}, {{"h", &h}}, p.context());
  const int64_t F = gate.dim(-1), rows = gate.numel() / F;
  dispatch_rows(p, true, rows, F, {{gate, 0, F}, {up, 0, F}, {h, 0, F}});
}

void swiglu_fused(Program& p, const Tensor& gate_up, const Tensor& h) {
  if (h.rank() < 1 || gate_up.rank() != h.rank() || gate_up.dim(-1) != 2 * h.dim(-1) || leading(gate_up) != leading(h))
    throw Error("swiglu_fused: wants gate_up [..., 2F] and h [..., F] with the same leading dims, given " +
                describe_all({{"gate_up", &gate_up}, {"h", &h}}));
  check("swiglu_fused", {{"gate_up", &gate_up}}, {{"h", &h}}, p.context());
  const int64_t F = h.dim(-1), rows = h.numel() / F;
  dispatch_rows(p, true, rows, F, {{gate_up, 0, 2 * F}, {gate_up, F, 2 * F}, {h, 0, F}});
}

void swiglu_backward(Program& p, const Tensor& gate, const Tensor& up, const Tensor& dh, const Tensor& dgate,
                     const Tensor& dup) {
  for (const Tensor* t : {&up, &dh, &dgate, &dup})
    if (gate.rank() < 1 || t->shape != gate.shape)
      throw Error("swiglu_backward: gate, up, dh, dgate and dup must have one shape, given " +
                  describe_all({{"gate", &gate}, {"up", &up}, {"dh", &dh}, {"dgate", &dgate}, {"dup", &dup}}));
  check("swiglu_backward", {{"gate", &gate}, {"up", &up}, {"dh", &dh}}, {{"dgate", &dgate}, {"dup", &dup}},
        p.context());
  const int64_t F = gate.dim(-1), rows = gate.numel() / F;
  dispatch_rows(p, false, rows, F, {{gate, 0, F}, {up, 0, F}, {dh, 0, F}, {dgate, 0, F}, {dup, 0, F}});
}

void swiglu_fused_backward(Program& p, const Tensor& gate_up, const Tensor& dh, const Tensor& dgate_up) {
  if (dh.rank() < 1 || gate_up.rank() != dh.rank() || gate_up.dim(-1) != 2 * dh.dim(-1) ||
      leading(gate_up) != leading(dh) || dgate_up.shape != gate_up.shape)
    throw Error("swiglu_fused_backward: wants gate_up and dgate_up [..., 2F] and dh [..., F] with the same leading "
                "dims, given " + describe_all({{"gate_up", &gate_up}, {"dh", &dh}, {"dgate_up", &dgate_up}}));
  check("swiglu_fused_backward", {{"gate_up", &gate_up}, {"dh", &dh}}, {{"dgate_up", &dgate_up}}, p.context());
  const int64_t F = dh.dim(-1), rows = dh.numel() / F;
  dispatch_rows(p, false, rows, F,
                {{gate_up, 0, 2 * F}, {gate_up, F, 2 * F}, {dh, 0, F}, {dgate_up, 0, 2 * F}, {dgate_up, F, 2 * F}});
}

}  // namespace vkm::ops
