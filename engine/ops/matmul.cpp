#include "engine/ops/matmul.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// matmul.comp's tiled kernel: threads along N and M, micro-tile rows and columns, k slice.
struct Tiles {
  uint32_t tx, ty, tm, tn, bk;
  uint32_t bm() const { return ty * tm; }
  uint32_t bn() const { return tx * tn; }
};
constexpr Tiles kTile64{16, 16, 4, 4, 16};
constexpr Tiles kTile128{16, 16, 8, 8, 8};  // twice the multiply-adds per shared load, 4x the registers

// matmul.comp's COOPMAT kernel: sg_m x sg_n subgroups, each summing a tile_m x tile_n tile of the block in
// fragments of the device's shape, over k slices of kCoopBK. Emulated, groups of kEmulatedGroup invocations
// stand for the subgroups, and the fragments are the one shape shaders/coopmat.glsl emulates.
struct CoopTiles {
  uint32_t sg_m, sg_n, tile_m, tile_n;
  uint32_t bm() const { return sg_m * tile_m; }
  uint32_t bn() const { return sg_n * tile_n; }
  uint32_t subgroups() const { return sg_m * sg_n; }
};
constexpr CoopTiles kCoop64{2, 2, 32, 32};
constexpr CoopTiles kCoop128{2, 4, 64, 32};  // 8 fragments of 16 x 16 per subgroup: each A fragment used twice
constexpr uint32_t kCoopBK = 32;
constexpr uint32_t kEmulatedGroup = 32;
const CoopMatrixShape kEmulatedShape{16, 16, 16, "f16", "f16", "f32", "f32", "subgroup"};

// Invocations per fragment group: the device's subgroup, or the emulation's fixed group.
uint32_t coop_group(const DeviceInfo& d, MatmulPath path) {
  return path == MatmulPath::emulated ? kEmulatedGroup : d.subgroup_size;
}

// The shader's shared memory for either transpose: f16 slices of A and B with rows padded by 8 elements, and
// an fp32 fragment of scratch per subgroup.
uint32_t coop_shared_bytes(const CoopTiles& t, const CoopMatrixShape& f) {
  auto slice = [](uint32_t b) { return std::max(b * (kCoopBK + 8), kCoopBK * (b + 8)) * 2; };
  return slice(t.bm()) + slice(t.bn()) + t.subgroups() * f.m * f.n * 4;
}

// 128 x 128 blocks, or 64 x 64. The big block is faster per multiply-add but pads ragged edges more, and a
// large GPU needs ~128 blocks in flight to be busy (a CPU device runs only a few workgroups at a time).
bool big_blocks(const DeviceInfo& d, MatmulTile tile, int64_t M, int64_t N, int64_t batch) {
  if (tile != MatmulTile::automatic) return tile == MatmulTile::t128;
  auto padded = [&](int64_t b) { return (M + b - 1) / b * ((N + b - 1) / b) * b * b; };
  bool enough = d.vk_type == VK_PHYSICAL_DEVICE_TYPE_CPU || padded(128) / (128 * 128) * batch >= 128;
  return enough && padded(128) * 4 <= padded(64) * 5;
}

// Why tensor cores cannot take A of dtype a into C of dtype c; empty if they can.
std::string coop_dtypes_unfit(DType a, DType c) {
  if (a == DType::f16 && (c == DType::f16 || c == DType::f32)) return {};
  return std::string(dtype_name(a)) + " inputs into " + std::string(dtype_name(c)) +
         ": tensor cores take f16 inputs into f16 or f32";
}

// Why the device cannot run the cooperative kernel on `path` (cooperative or emulated) with fragments f at
// block sizes up to kCoop128; empty if it can. The emulation needs no subgroups and no memory model.
std::string coop_unfit(const DeviceInfo& d, const CoopMatrixShape& f, MatmulPath path) {
  if (!has_16bit(d)) return "no 16-bit storage and arithmetic";
  if (path == MatmulPath::cooperative) {
    if (!d.vulkan_memory_model) return "no vulkanMemoryModel feature";
    bool basic = std::find(d.subgroup_ops.begin(), d.subgroup_ops.end(), "basic") != d.subgroup_ops.end();
    if (!d.subgroup_in_compute || !basic) return "no subgroup operations in compute shaders";
    if (d.min_subgroup_size != d.max_subgroup_size || d.subgroup_size == 0)
      return "subgroup size varies (" + std::to_string(d.min_subgroup_size) + ".." +
             std::to_string(d.max_subgroup_size) + ")";
  }
  const uint32_t threads = kCoop128.subgroups() * coop_group(d, path);
  if (threads > d.max_workgroup_invocations || threads > d.max_workgroup_size[0])
    return "workgroups of " + std::to_string(threads) + " invocations are over the device's limit";
  if (coop_shared_bytes(kCoop128, f) > d.max_shared_memory)
    return "needs " + std::to_string(coop_shared_bytes(kCoop128, f)) + " bytes of shared memory, the device has " +
           std::to_string(d.max_shared_memory);
  return {};
}

Shape leading(const Tensor& t) { return Shape(t.shape.begin(), t.shape.end() - 2); }

// Leading dims flattened into rows: [..., cols] as [rows, cols].
Tensor rows(const Tensor& t) { return t.reshape({t.numel() / t.dim(-1), t.dim(-1)}); }

// A linear layer's tensors: w [N,K], and k_side [..., K] and n_side [..., N] with the same leading dims.
void check_linear(const char* op, const char* w_name, const Tensor& w, const char* k_name, const Tensor& k_side,
                  const char* n_name, const Tensor& n_side) {
  bool ok = w.rank() == 2 && w.numel() > 0 && k_side.rank() >= 1 && n_side.rank() == k_side.rank() &&
            k_side.dim(-1) == w.dim(1) && n_side.dim(-1) == w.dim(0) &&
            std::equal(k_side.shape.begin(), k_side.shape.end() - 1, n_side.shape.begin());
  if (!ok)
    throw Error(std::string(op) + ": " + w_name + " " + w.describe() + ", " + k_name + " " + k_side.describe() + ", " +
                n_name + " " + n_side.describe() + ": want " + w_name + " [N,K], " + k_name + " [...,K] and " + n_name +
                " [...,N] with the same leading dims");
}

// The widest load, 4, 2 or 1 elements, that divides both the stored row length and the elements before the
// matrix in its binding: then no load straddles a row (or the matrix's edge) and each is aligned to its size.
uint32_t load_width(const Tensor& t, uint32_t skip) {
  for (uint32_t w : {4u, 2u})
    if (t.dim(-1) % w == 0 && skip % w == 0) return w;
  return 1;
}

// One dispatch on the kernel chosen (tiled, or cooperative or emulated with its fragment shape); every operand
// fits a binding (or the binding check says why not).
void dispatch_product(Program& p, const Tensor& A, const Tensor& B, const Tensor& C, const MatmulSpec& s,
                      const MatmulChoice& kernel, int64_t M, int64_t N, int64_t K) {
  const Context& ctx = p.context();
  const DeviceInfo& d = ctx.info();
  const int64_t count = C.numel() / (M * N);
  const bool big = big_blocks(d, s.tile, M, N, count);
  auto [a, skip_a] = aligned_span(ctx, A, 0, A.numel());
  auto [b, skip_b] = aligned_span(ctx, B, 0, B.numel());
  auto [c, skip_c] = aligned_span(ctx, C, 0, C.numel());
  struct Push {
    uint32_t M, N, K, batch_a, batch_b, batch_c, accumulate, skip_a, skip_b, skip_c;
  };
  const uint32_t batch_a = A.rank() > 2 ? uint32_t(M * K) : 0, batch_b = B.rank() > 2 ? uint32_t(K * N) : 0;
  const Push push{uint32_t(M), uint32_t(N), uint32_t(K), batch_a, batch_b, uint32_t(M * N), s.accumulate,
                  skip_a, skip_b, skip_c};
  // A variant per form, storage and kernel; the shared constants first, then the kernel's own.
  std::string variant = std::string("matmul.") + (s.trans_a ? 't' : 'n') + (s.trans_b ? 't' : 'n');
  if (A.dtype != DType::f32) {
    const std::string in = A.dtype == DType::f16 ? "_f16" : "_bf16";
    variant += C.dtype == DType::f32 ? in + "_f32out" : in;
  }
  std::vector<uint32_t> spec{0, load_width(A, skip_a), load_width(B, skip_b)};
  uint32_t bm, bn;
  if (kernel.path != MatmulPath::tiled) {
    const CoopTiles t = big ? kCoop128 : kCoop64;
    const CoopMatrixShape& f = kernel.shape;
    variant += kernel.path == MatmulPath::emulated ? "_coop_emu" : "_coop";
    spec[0] = kCoopBK;
    spec.insert(spec.end(), {t.subgroups() * coop_group(d, kernel.path), t.sg_m, t.sg_n, t.tile_m / f.m,
                             t.tile_n / f.n, f.m, f.n, f.k});
    bm = t.bm(), bn = t.bn();
  } else {
    const Tiles t = big ? kTile128 : kTile64;
    if (t.tx * t.ty > d.max_workgroup_invocations)
      throw Error("matmul: device '" + d.name + "' allows only " + std::to_string(d.max_workgroup_invocations) +
                  " invocations per workgroup, fewer than the " + std::to_string(t.tx * t.ty) + " it needs");
    spec[0] = t.bk;
    spec.insert(spec.end(), {t.tx, t.ty, t.tm, t.tn});
    bm = t.bm(), bn = t.bn();
  }
  const Kernel& k = p.context().kernel({variant, 3, sizeof(Push), spec});
  p.dispatch(k, {in(a), in(b), s.accumulate ? inout(c) : out(c)}, push, uint32_t((N + bn - 1) / bn),
             uint32_t((M + bm - 1) / bm), uint32_t(count),
             variant + " " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
}

// Units (batch entries or rows) per piece, so that each split operand, `unit_bytes` a unit (0: not split),
// fits one binding (from the aligned offset at or below it), in steps that keep the pieces' starts as aligned
// as the first one's; 0 if no step fits.
int64_t units_per_piece(const DeviceInfo& d, std::initializer_list<int64_t> unit_bytes) {
  const int64_t align = int64_t(d.min_storage_offset_alignment);
  int64_t step = 1, widest = 1;
  for (int64_t b : unit_bytes) {
    step = std::lcm(step, align / std::gcd(align, b));
    widest = std::max(widest, b);
  }
  return (int64_t(d.max_storage_buffer_range) - align) / widest / step * step;
}

}  // namespace

std::string MatmulChoice::describe() const {
  if (path == MatmulPath::tiled) return "tiled shared memory (" + why + ")";
  return "cooperative matrix " + std::to_string(shape.m) + "x" + std::to_string(shape.n) + "x" +
         std::to_string(shape.k) + " (" + why + ")";
}

MatmulChoice choose_matmul_path(const DeviceInfo& d, DType a, DType c, bool allowed) {
  auto tiled = [](std::string why) { return MatmulChoice{MatmulPath::tiled, {}, std::move(why)}; };
  if (std::string why = coop_dtypes_unfit(a, c); !why.empty()) return tiled(why);
  if (!d.nv_cooperative_matrix)
    return tiled(d.khr_cooperative_matrix
                     ? "VK_KHR_cooperative_matrix only: not used, Debian's glslang lacks GL_KHR_cooperative_matrix"
                     : "no VK_NV_cooperative_matrix");
  // The kernel's fragments tile its 32-wide subgroup tiles and k slices, in rows of at least 16 bytes.
  auto fits = [](uint32_t x) { return x == 8 || x == 16 || x == 32; };
  const CoopMatrixShape* best = nullptr;
  for (const CoopMatrixShape& f : d.nv_coop_shapes)
    if (f.a == "f16" && f.b == "f16" && f.c == "f32" && f.result == "f32" && f.scope == "subgroup" && fits(f.m) &&
        fits(f.n) && fits(f.k) && (!best || f.m * f.n * f.k > best->m * best->n * best->k))
      best = &f;
  if (!best) return tiled("no VK_NV_cooperative_matrix shape for f16 x f16 + f32 in a subgroup with M, N, K of 8 to 32");
  if (std::string why = coop_unfit(d, *best, MatmulPath::cooperative); !why.empty()) return tiled(why);
  if (!allowed) return tiled("cooperative matrix turned off: --no-coopmat or VKMIND_NO_COOPMAT");
  return {MatmulPath::cooperative, *best, "VK_NV_cooperative_matrix"};
}

MatmulChoice emulated_matmul_path(const DeviceInfo& d, DType a, DType c) {
  std::string why = coop_dtypes_unfit(a, c);
  if (why.empty()) why = coop_unfit(d, kEmulatedShape, MatmulPath::emulated);
  if (!why.empty()) return {MatmulPath::tiled, {}, why};
  return {MatmulPath::emulated, kEmulatedShape, "emulated in plain GLSL, shaders/coopmat.glsl"};
}

void matmul(Program& p, const Tensor& A, const Tensor& B, const Tensor& C, const MatmulSpec& s) {
  auto fail = [&](const std::string& why) {
    throw Error("matmul: " + why + " (A " + A.describe() + (s.trans_a ? " transposed" : "") + ", B " + B.describe() +
                (s.trans_b ? " transposed" : "") + ", C " + C.describe() + ")");
  };
  for (const Tensor* t : {&A, &B, &C}) {
    if (!*t) fail("a tensor is not allocated");
    if (t->rank() < 2) fail("tensors need 2 dims or more");
  }
  if (A.dtype != B.dtype || !is_float(A.dtype)) fail("A and B must be both f32, both f16 or both bf16");
  if (C.dtype != DType::f32 && C.dtype != A.dtype) fail("C must be f32, or of A's and B's 16-bit type");
  require_storage(p.context(), A.dtype, "matmul");
  const int64_t M = s.trans_a ? A.dim(-1) : A.dim(-2), K = s.trans_a ? A.dim(-2) : A.dim(-1);
  const int64_t N = s.trans_b ? B.dim(-2) : B.dim(-1), KB = s.trans_b ? B.dim(-1) : B.dim(-2);
  if (K != KB) fail("inner dims differ, K " + std::to_string(K) + " vs " + std::to_string(KB));
  if (C.dim(-2) != M || C.dim(-1) != N) fail("C must be [..., " + std::to_string(M) + "," + std::to_string(N) + "]");
  const Shape batch = leading(C);
  for (const Tensor* t : {&A, &B})
    if (t->rank() > 2 && leading(*t) != batch) fail("A and B must have C's leading dims, or none");
  if (C.numel() == 0 || K == 0) fail("empty product");
  if (C.overlaps(A) || C.overlaps(B)) fail("C overlaps an input");
  const Context& ctx = p.context();
  const DeviceInfo& d = ctx.info();
  MatmulChoice kernel = choose_matmul_path(d, A.dtype, C.dtype, ctx.allows_cooperative_matrix());
  // The emulation where asked for, or where the context emulates and it fits.
  if (s.path == MatmulPath::emulated || (s.path == MatmulPath::automatic && ctx.emulates_cooperative_matrix())) {
    MatmulChoice emulated = emulated_matmul_path(d, A.dtype, C.dtype);
    if (s.path == MatmulPath::emulated || emulated.path == MatmulPath::emulated) kernel = std::move(emulated);
  }
  if ((s.path == MatmulPath::cooperative || s.path == MatmulPath::emulated) && kernel.path != s.path)
    fail(std::string(s.path == MatmulPath::emulated ? "the emulated " : "the ") +
         "cooperative-matrix path was asked for, but device '" + d.name + "' cannot take it: " + kernel.why);
  if (s.path == MatmulPath::tiled) kernel.path = MatmulPath::tiled;
  auto dispatch = [&](const Tensor& a, const Tensor& b, const Tensor& c, const MatmulSpec& spec, int64_t m, int64_t n,
                      int64_t k) { dispatch_product(p, a, b, c, spec, kernel, m, n, k); };

  // Past maxStorageBufferRange, pieces along a dim whose slices are contiguous in the large operands: batch
  // entries; else rows of A and C; else (A transposed) k, summed into C piece after piece. Where no split
  // applies, or a single unit is too large, the binding check names the tensor. An f16 C summed over k
  // pieces is rounded once per piece.
  const int64_t count = C.numel() / (M * N);
  const int64_t ea = int64_t(dtype_size(A.dtype)), eb = int64_t(dtype_size(B.dtype)), ec = int64_t(dtype_size(C.dtype));
  auto fits = [&](const Tensor& t) {
    return aligned_span(ctx, t, 0, t.numel()).first.bytes() <= d.max_storage_buffer_range;
  };
  auto in_pieces = [&](int64_t units, std::initializer_list<int64_t> unit_bytes,
                       const std::function<void(int64_t, int64_t)>& piece) {
    const int64_t per = units_per_piece(d, unit_bytes);
    if (per == 0) return dispatch(A, B, C, s, M, N, K);
    for (int64_t u = 0; u < units; u += per) piece(u, std::min(per, units - u));
  };
  if (fits(A) && fits(B) && fits(C)) {
    dispatch(A, B, C, s, M, N, K);
  } else if (count > 1) {
    auto entries = [](const Tensor& t, int64_t u, int64_t n) {
      return t.rank() > 2 ? t.view(u * t.dim(-2) * t.dim(-1), {n, t.dim(-2), t.dim(-1)}) : t;
    };
    in_pieces(count, {A.rank() > 2 ? M * K * ea : 0, B.rank() > 2 ? K * N * eb : 0, M * N * ec},
              [&](int64_t u, int64_t n) {
                dispatch(entries(A, u, n), entries(B, u, n), entries(C, u, n), s, M, N, K);
              });
  } else if (!s.trans_a) {
    in_pieces(M, {K * ea, N * ec}, [&](int64_t u, int64_t n) {
      dispatch(A.view(u * K, {n, K}), B, C.view(u * N, {n, N}), s, n, N, K);
    });
  } else if (!s.trans_b) {
    in_pieces(K, {M * ea, N * eb}, [&](int64_t u, int64_t n) {
      MatmulSpec piece = s;
      piece.accumulate = s.accumulate || u > 0;
      dispatch(A.view(u * M, {n, M}), B.view(u * N, {n, N}), C, piece, M, N, n);
    });
  } else {
    dispatch(A, B, C, s, M, N, K);
  }
}

void linear(Program& p, const Tensor& X, const Tensor& W, const Tensor& Y, bool accumulate) {
  check_linear("linear", "W", W, "X", X, "Y", Y);
  matmul(p, rows(X), W, rows(Y), {.trans_b = true, .accumulate = accumulate});
}

void linear_backward_input(Program& p, const Tensor& dY, const Tensor& W, const Tensor& dX, bool accumulate) {
  check_linear("linear_backward_input", "W", W, "dX", dX, "dY", dY);
  matmul(p, rows(dY), W, rows(dX), {.accumulate = accumulate});
}

void linear_backward_weight(Program& p, const Tensor& dY, const Tensor& X, const Tensor& dW, bool accumulate) {
  check_linear("linear_backward_weight", "dW", dW, "X", X, "dY", dY);
  matmul(p, rows(dY), rows(X), dW, {.trans_a = true, .accumulate = accumulate});
}

}  // namespace vkm::ops
