#pragma once
// Matrix products (shaders/matmul.comp), summed in fp32. Tensors are row-major, views at any offset; the last
// two dims are the matrix and any leading dims a batch. Storage is picked by dtype: A, B and C f32; or A and B
// f16 with C f16 (rounded once, on store) or f32 (e.g. weight gradients summed into fp32), which needs
// 16-bit support (ops::has_16bit); or the same in bf16 (ops::has_bf16), on the tiled kernel. f16 products run
// on tensor cores where the device offers them through VK_NV_cooperative_matrix (choose_matmul_path), else on
// the tiled kernel every device runs.
#include <string>

#include "engine/device_info.hpp"
#include "engine/dtype.hpp"
#include "engine/program.hpp"

namespace vkm::ops {

// The block of C one workgroup computes: 64 x 64 or 128 x 128. automatic picks by size; the fixed ones are
// for tests and benches.
enum class MatmulTile { automatic, t64, t128 };

// The kernel: tiled (fp32 multiply-adds through shared memory, any device) or cooperative (tensor cores
// through VK_NV_cooperative_matrix, f16 A and B). automatic takes what choose_matmul_path says; asking for
// cooperative where it does not apply is an error naming the device and the reason. emulated runs the
// cooperative kernels with their fragment ops in plain GLSL (shaders/coopmat.glsl) on any device with 16-bit
// support: for tests of the kernels where no tensor cores are, never chosen by automatic.
enum class MatmulPath { automatic, tiled, cooperative, emulated };

struct MatmulSpec {
  bool trans_a = false;     // A is stored [K,M] rather than [M,K]
  bool trans_b = false;     // B is stored [N,K] rather than [K,N]
  bool accumulate = false;  // C += product; otherwise C = product, whatever C held (NaN included)
  MatmulTile tile = MatmulTile::automatic;
  MatmulPath path = MatmulPath::automatic;
};

struct MatmulChoice {
  MatmulPath path = MatmulPath::tiled;  // tiled, cooperative or emulated
  CoopMatrixShape shape;                // the fragment shape, on the cooperative and emulated paths
  std::string why;                      // the extension used, or why the cooperative path is not taken
  // "cooperative matrix 16x16x16 (VK_NV_cooperative_matrix)" (or "(emulated ...)"), or "tiled shared memory
  // (<why>)".
  std::string describe() const;
};

// The path of a product with A and B of dtype `a` into C of dtype `c` on device `d`: cooperative where `a`
// is f16, `d` has VK_NV_cooperative_matrix with a subgroup-scope shape for f16 x f16 + f32 whose M, N and K
// are 8, 16 or 32 (the largest is taken), 16-bit storage and arithmetic, the Vulkan memory model, a fixed
// subgroup size, and the workgroup size and shared memory the kernel's blocks need; and `allowed` (the
// context's ContextOptions::cooperative_matrix). Otherwise tiled. A pure function of its arguments.
MatmulChoice choose_matmul_path(const DeviceInfo& d, DType a, DType c, bool allowed);

// What MatmulPath::emulated runs on `d`: emulated with 16x16x16 fragments where `a` is f16 and `d` has 16-bit
// storage and arithmetic and the workgroup size and shared memory of the cooperative kernel's blocks (in groups
// of 32 invocations, whatever the device's subgroups); otherwise tiled, saying why not. A pure function.
MatmulChoice emulated_matmul_path(const DeviceInfo& d, DType a, DType c);

// C[..., M, N] = op(A)[..., M, K] · op(B)[..., K, N]. A and B have C's leading dims, or none: a plain
// matrix is shared by every batch entry. C must not overlap A or B. Operands past maxStorageBufferRange are
// bound in pieces of batch entries, rows of A and C, or (A transposed, B not) k; others must fit a binding.
void matmul(Program& p, const Tensor& A, const Tensor& B, const Tensor& C, const MatmulSpec& spec = {});

// A linear layer with weight W [N,K]. X, Y, dX and dY may have leading dims (X [B,T,K] is M = B*T rows).
// Y = X·Wᵀ
void linear(Program& p, const Tensor& X, const Tensor& W, const Tensor& Y, bool accumulate = false);
// dX = dY·W
void linear_backward_input(Program& p, const Tensor& dY, const Tensor& W, const Tensor& dX, bool accumulate = false);
// dW += dYᵀ·X (or dW = dYᵀ·X without accumulate)
void linear_backward_weight(Program& p, const Tensor& dY, const Tensor& X, const Tensor& dW, bool accumulate = true);

}  // namespace vkm::ops
