#include "engine/ops/attention.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <numbers>
#include <tuple>
#include <utility>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// A thread holds up to four head-dim vectors in registers (k, v, dk, dv in the dkdv pass).
constexpr int64_t kMaxHeadDim = 256;

struct Dims {
  int64_t B, T, Hq, Hkv, D;
};

// The kernel (attention.comp's variant suffix) and its specialization constants: invocations per workgroup,
// rows per workgroup, rows staged per tile. The per-thread kernels run a thread per row; the cooperative ones
// run 4 groups of 32 invocations on 64 rows.
struct Tiles {
  uint32_t threads, rows, tile;
  const char* suffix = "";  // "" (per thread), "_coop" or "_emulated"
};
constexpr uint32_t kCoopThreads = 128, kCoopRows = 64;

// Shared memory of a per-thread pass: two staged tiles of D floats per row, and two floats per row (dkdv's lse
// and Δ).
uint64_t shared_bytes(const Tiles& t, int64_t D) { return uint64_t(t.tile) * (2 * D + 2) * 4; }

// Shared memory of a cooperative pass: two staged f16 tiles and the block's f16 probabilities and fp32 scores,
// rows padded by 16 bytes, and a few floats per row and per staged row.
uint64_t coop_shared_bytes(uint32_t tile, int64_t D) {
  const uint64_t rows = kCoopRows;
  return 2 * tile * uint64_t(D + 8) * 2 + rows * (tile + 8) * 2 + rows * (tile + 4) * 4 + (2 * rows + 2 * tile) * 4 + 4;
}

Tiles choose_tiles(const DeviceInfo& d, AttentionTile choice, const Dims& s) {
  bool large = choice == AttentionTile::large;
  // A large GPU needs ~128 workgroups in flight to be busy; a CPU device runs only a few at a time.
  if (choice == AttentionTile::automatic)
    large = d.vk_type != VK_PHYSICAL_DEVICE_TYPE_CPU && s.B * s.Hq * ((s.T + 127) / 128) >= 128;
  Tiles t = large ? Tiles{128, 128, 64} : Tiles{64, 64, 32};
  while (t.tile > 8 && shared_bytes(t, s.D) > d.max_shared_memory) t.tile /= 2;
  if (shared_bytes(t, s.D) > d.max_shared_memory)
    throw Error("attention: head dim " + std::to_string(s.D) + " needs " + std::to_string(shared_bytes(t, s.D)) +
                " bytes of shared memory, over the " + std::to_string(d.max_shared_memory) + " of device '" + d.name +
                "'");
  return t;
}

// Why the cooperative kernels cannot take attention on `dtype` storage with head dim D on device d, tensor
// cores aside; empty if they can.
std::string coop_kernel_unfit(const DeviceInfo& d, DType dtype, int64_t D) {
  if (dtype != DType::f16) return std::string(dtype_name(dtype)) + " storage: the cooperative kernels take f16";
  if (D % 16 != 0) return "head dim " + std::to_string(D) + " is not a multiple of 16";
  if (kCoopThreads > d.max_workgroup_invocations || kCoopThreads > d.max_workgroup_size[0])
    return "workgroups of " + std::to_string(kCoopThreads) + " invocations are over the device's limit";
  if (coop_shared_bytes(32, D) > d.max_shared_memory)
    return "head dim " + std::to_string(D) + " needs " + std::to_string(coop_shared_bytes(32, D)) +
           " bytes of shared memory, the device has " + std::to_string(d.max_shared_memory);
  return {};
}

// The kernel opt.path asks for (automatic: choose_attention_path's), or an error naming the device and why
// it cannot be had. The cooperative kernels stage 64 rows where shared memory allows, unless asked for small.
Tiles choose_kernel(const Context& ctx, const char* op, const AttentionOptions& opt, const Dims& s, DType dtype) {
  const DeviceInfo& d = ctx.info();
  MatmulPath path = opt.path;
  if (path == MatmulPath::automatic && ctx.emulates_cooperative_matrix() && coop_kernel_unfit(d, dtype, s.D).empty())
    path = MatmulPath::emulated;
  auto refuse = [&](const char* what, const std::string& why) {
    throw Error(std::string(op) + ": the " + what + " path was asked for, but device '" + d.name +
                "' cannot take it: " + why);
  };
  if (path == MatmulPath::automatic || path == MatmulPath::cooperative) {
    const MatmulChoice c = choose_attention_path(d, dtype, s.D, ctx.allows_cooperative_matrix());
    if (path == MatmulPath::cooperative && c.path != MatmulPath::cooperative) refuse("cooperative-matrix", c.why);
    path = c.path;
  } else if (path == MatmulPath::emulated) {
    if (std::string why = coop_kernel_unfit(d, dtype, s.D); !why.empty()) refuse("emulated cooperative", why);
  }
  if (path == MatmulPath::tiled) return choose_tiles(d, opt.tile, s);
  const bool large = opt.tile != AttentionTile::small && coop_shared_bytes(64, s.D) <= d.max_shared_memory;
  return {kCoopThreads, kCoopRows, large ? 64u : 32u, path == MatmulPath::emulated ? "_emulated" : "_coop"};
}

// The shapes every pass shares, from q, k and v (and lengths), or an error naming them.
Dims check_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
  auto fail = [&](const std::string& why) {
    throw Error(std::string(op) + ": " + why + " (q " + q.describe() + ", k " + k.describe() + ", v " + v.describe() +
                ")");
  };
  if (!q || !k || !v) fail("a tensor is not allocated");
  if (q.rank() != 4 || k.rank() != 4 || k.shape != v.shape) fail("want q [B,T,Hq,D] and k, v [B,T,Hkv,D] of one shape");
  const Dims s{q.dim(0), q.dim(1), q.dim(2), k.dim(2), q.dim(3)};
  if (k.dim(0) != s.B || k.dim(1) != s.T || k.dim(3) != s.D) fail("q, k and v differ in B, T or D");
  if (q.numel() == 0 || k.numel() == 0) fail("empty tensors");
  if (s.Hq % s.Hkv != 0) fail("the query heads must be a multiple of the kv heads");
  if (s.D % 4 != 0 || s.D > kMaxHeadDim) fail("the head dim must be a multiple of 4, at most 256");
  if (!is_float(q.dtype)) fail("q, k and v must be f32, f16 or bf16");
  if (k.dtype != q.dtype || v.dtype != q.dtype) fail("q, k and v must have one dtype");
  if (opt.lengths && (opt.lengths.dtype != DType::i32 || opt.lengths.shape != Shape{s.B}))
    fail("lengths " + opt.lengths.describe() + " must be i32 [B] = [" + std::to_string(s.B) + "]");
  return s;
}

// Each named tensor must have its dtype and shape, and none of the outputs may overlap another tensor.
struct Named {
  const char* name;
  const Tensor& t;
};
void check_outputs(const char* op, std::initializer_list<std::pair<Named, std::pair<DType, Shape>>> want,
                   std::initializer_list<Named> outputs, std::initializer_list<Named> inputs) {
  for (const auto& [n, w] : want)
    if (!n.t || n.t.dtype != w.first || n.t.shape != w.second)
      throw Error(std::string(op) + ": " + n.name + " " + n.t.describe() + " must be " +
                  std::string(dtype_name(w.first)) + shape_string(w.second));
  for (auto o = outputs.begin(); o != outputs.end(); ++o) {
    for (const Named& i : inputs)
      if (o->t.overlaps(i.t))
        throw Error(std::string(op) + ": " + o->name + " " + o->t.describe() + " overlaps " + i.name + " " +
                    i.t.describe());
    for (auto other = o + 1; other != outputs.end(); ++other)
      if (o->t.overlaps(other->t))
        throw Error(std::string(op) + ": " + o->name + " " + o->t.describe() + " overlaps " + other->name + " " +
                    other->t.describe());
  }
}

// One pass of attention.comp. Each tensor is bound from the aligned offset at or below it, with its skip in
// the push constants; without padding, q stands in for the lengths binding, which is then never read.
void dispatch_pass(Program& p, const char* pass, const Dims& s, DType dtype, const Tiles& t, bool padded,
                   std::vector<Binding> bindings, int64_t heads) {
  struct Push {
    uint32_t T, Hq, Hkv, padded;
    float scale, scale_log2e;
    uint32_t skip[9];
  };
  const double scale = 1.0 / std::sqrt(double(s.D));
  Push push{uint32_t(s.T), uint32_t(s.Hq), uint32_t(s.Hkv), padded, float(scale), float(scale * std::numbers::log2e)};
  Context& ctx = p.context();
  for (size_t i = 0; i < bindings.size(); ++i)
    std::tie(bindings[i].tensor, push.skip[i]) = aligned_span(ctx, bindings[i].tensor, 0, bindings[i].tensor.numel());
  const std::string variant = std::string("attention.") + pass + "_" + std::string(dtype_name(dtype)) + t.suffix;
  const Kernel& k = ctx.kernel({variant, uint32_t(bindings.size()), sizeof(Push), {t.threads, t.tile, uint32_t(s.D)}});
  p.dispatch(k, std::move(bindings), push, uint32_t((s.T + t.rows - 1) / t.rows), uint32_t(heads), uint32_t(s.B),
             variant + " B" + std::to_string(s.B) + " T" + std::to_string(s.T) + " H" + std::to_string(s.Hq) + "/" +
                 std::to_string(s.Hkv) + " D" + std::to_string(s.D));
}

}  // namespace

MatmulChoice choose_attention_path(const DeviceInfo& d, DType dtype, int64_t head_dim, bool allowed) {
  auto tiled = [](std::string why) { return MatmulChoice{MatmulPath::tiled, {}, std::move(why)}; };
  if (std::string why = coop_kernel_unfit(d, dtype, head_dim); !why.empty()) return tiled(why);
  const MatmulChoice matmul = choose_matmul_path(d, DType::f16, DType::f16, allowed);
  if (matmul.path != MatmulPath::cooperative) return matmul;
  auto square = std::find_if(d.nv_coop_shapes.begin(), d.nv_coop_shapes.end(), [](const CoopMatrixShape& f) {
    return f.m == 16 && f.n == 16 && f.k == 16 && f.a == "f16" && f.b == "f16" && f.c == "f32" && f.result == "f32" &&
           f.scope == "subgroup";
  });
  if (square == d.nv_coop_shapes.end())
    return tiled("no 16x16x16 VK_NV_cooperative_matrix shape for f16 x f16 + f32 in a subgroup");
  if (d.subgroup_size != 32)
    return tiled("subgroups of " + std::to_string(d.subgroup_size) + " invocations, the kernels need 32");
  return {MatmulPath::cooperative, *square, matmul.why};
}

void attention(Program& p, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
               const AttentionOptions& opt) {
  const Dims s = check_inputs("attention", q, k, v, opt);
  check_outputs("attention", {{{"out", out}, {q.dtype, q.shape}}, {{"lse", lse}, {DType::f32, {s.B, s.Hq, s.T}}}},
                {{"out", out}, {"lse", lse}}, {{"q", q}, {"k", k}, {"v", v}, {"lengths", opt.lengths}});
  Context& ctx = p.context();
  require_storage(ctx, q.dtype, "attention");
  const Tiles t = choose_kernel(ctx, "attention", opt, s, q.dtype);
  const Tensor& lengths = opt.lengths ? opt.lengths : q;
  dispatch_pass(p, "forward", s, q.dtype, t, bool(opt.lengths),
                {in(q), in(k), in(v), in(lengths), vkm::out(out), vkm::out(lse)}, s.Hq);
}

int64_t attention_backward_scratch_elems(const Tensor& q) { return q.rank() == 4 ? q.dim(0) * q.dim(2) * q.dim(1) : 0; }

void attention_backward(Program& p, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                        const Tensor& scratch, const AttentionOptions& opt) {
  const char* op = "attention_backward";
  const Dims s = check_inputs(op, q, k, v, opt);
  const int64_t rows = attention_backward_scratch_elems(q);
  if (!scratch || scratch.dtype != DType::f32 || scratch.numel() < rows)
    throw Error(std::string(op) + ": scratch " + scratch.describe() + " must be f32 with at least " +
                std::to_string(rows) + " elements (attention_backward_scratch_elems)");
  const Tensor delta = scratch.flat().view(0, {rows});
  check_outputs(op,
                {{{"out", out}, {q.dtype, q.shape}},
                 {{"lse", lse}, {DType::f32, {s.B, s.Hq, s.T}}},
                 {{"dout", dout}, {q.dtype, q.shape}},
                 {{"dq", dq}, {q.dtype, q.shape}},
                 {{"dk", dk}, {k.dtype, k.shape}},
                 {{"dv", dv}, {k.dtype, k.shape}}},
                {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"scratch", delta}},
                {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"lse", lse}, {"dout", dout}, {"lengths", opt.lengths}});
  Context& ctx = p.context();
  require_storage(ctx, q.dtype, op);
  const Tiles t = choose_kernel(ctx, op, opt, s, q.dtype);
  const Tensor& lengths = opt.lengths ? opt.lengths : q;
  const bool padded = bool(opt.lengths);
  // dq first: it also stores Δ = rowsum(dout ∘ out), which dkdv reads.
  dispatch_pass(p, "dq", s, q.dtype, t, padded,
                {in(q), in(k), in(v), in(lengths), in(out), in(lse), in(dout), vkm::out(dq), vkm::out(delta)}, s.Hq);
  dispatch_pass(p, "dkdv", s, q.dtype, t, padded,
                {in(q), in(k), in(v), in(lengths), in(lse), in(dout), in(delta), vkm::out(dk), vkm::out(dv)}, s.Hkv);
}

}  // namespace vkm::ops
