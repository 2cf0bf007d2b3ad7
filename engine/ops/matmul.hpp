#pragma once
// Matrix products (shaders/matmul.comp), summed in fp32. Tensors are row-major, views at any offset; the last
// two dims are the matrix and any leading dims a batch. Storage is picked by dtype: A, B and C f32; or A and B
// f16 with C f16 (rounded once, on store) or f32 (e.g. weight gradients summed into fp32), which needs
// 16-bit support (ops::has_16bit).
#include "engine/program.hpp"

namespace vkm::ops {

// The block of C one workgroup computes. automatic picks by size; the fixed ones are for tests and benches.
enum class MatmulTile { automatic, t64, t128 };

struct MatmulSpec {
  bool trans_a = false;     // A is stored [K,M] rather than [M,K]
  bool trans_b = false;     // B is stored [N,K] rather than [K,N]
  bool accumulate = false;  // C += product; otherwise C = product, whatever C held (NaN included)
  MatmulTile tile = MatmulTile::automatic;
};

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
