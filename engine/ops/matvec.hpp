#pragma once
// Linear layers over a few rows (shaders/matvec.comp): decoding multiplies B rows, one token per sequence, by
// every weight, and a tiled matmul would pad them to its 64- or 128-row block. X and W both f32, or both f16
// (16-bit support, ops::has_16bit; the weights' bytes halved), Y f32: the storages of ops::linear with C f32.
// Sums in fp32, in a fixed order (bit-identical run to run), not in the order matmul sums.
#include <cstdint>

#include "engine/program.hpp"

namespace vkm::ops {

// Rows of X one workgroup takes at a time: up to this many rows read each weight row once.
constexpr int64_t kMatvecRows = 8;

// How the work is split (shaders/matvec.comp): automatic takes by_column on CPU devices, split_k elsewhere; the
// fixed ones are for tests and benches.
enum class MatvecKernel { automatic, by_column, split_k };

// Y = X·Wᵀ (or Y += X·Wᵀ) for W [N,K], X [..., K] and Y [..., N] with the same leading dims, as linear().
// Any number of rows works, in groups of kMatvecRows; past a few groups ops::linear is faster. Y must not
// overlap X or W, and each tensor must fit one storage binding.
void matvec(Program& p, const Tensor& X, const Tensor& W, const Tensor& Y, bool accumulate = false,
            MatvecKernel kernel = MatvecKernel::automatic);

}  // namespace vkm::ops
