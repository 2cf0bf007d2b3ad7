#pragma once
// Causal grouped-query attention, flash style (shaders/attention.comp): the T x T scores are recomputed tile by
// tile and never stored. q is [B,T,Hq,D]; k and v are [B,T,Hkv,D] with Hq a multiple of Hkv (query head h
// reads kv head h / (Hq/Hkv)); scores are q·k/sqrt(D). D is a multiple of 4, at most 256. All of q, k, v, out,
// dout, dq, dk and dv are f32, or all are f16, or all bf16 (stored 16-bit, computed in fp32); lse and scratch
// are f32. f16 attention with D a multiple of 16 runs its products on tensor cores where the device offers them
// (choose_attention_path), else on the per-thread kernels every device runs.
#include <cstdint>

#include "engine/device_info.hpp"
#include "engine/dtype.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/program.hpp"

namespace vkm::ops {

// Rows per workgroup and rows staged per tile. automatic picks by device and size; the fixed ones are for
// tests and benches (the staged tile shrinks where shared memory is short). The cooperative kernels always
// take 64 rows, and stage 32 rows (small) or 64 (large, and automatic where it fits).
enum class AttentionTile { automatic, small, large };

struct AttentionOptions {
  // Padding: i32 [B], the length of each sequence. Keys at or past it are masked; query rows at or past it
  // give zeros in out (and lse, which the backward ignores), dq, dk and dv. Unset: every sequence is T long.
  Tensor lengths;
  AttentionTile tile = AttentionTile::automatic;
  // The kernels' products: tiled = the per-thread kernels (any storage), cooperative = tensor cores (f16,
  // D a multiple of 16), emulated = the cooperative kernels with emulated fragments on any device with 16-bit
  // support (tests; never chosen by automatic), automatic = what choose_attention_path says. Asking for
  // cooperative or emulated where it does not apply is an error naming the device and the reason.
  MatmulPath path = MatmulPath::automatic;
};

// The kernels attention on `dtype` storage with head dim `head_dim` takes on device `d`: cooperative (16x16x16
// f16 fragments, fp32 sums) where the storage is f16, the head dim a multiple of 16, choose_matmul_path takes
// the tensor cores (`allowed` included), the device lists the 16x16x16 shape and has subgroups of 32, and the
// kernels' shared memory fits; otherwise tiled (the per-thread kernels). A pure function of its arguments.
MatmulChoice choose_attention_path(const DeviceInfo& d, DType dtype, int64_t head_dim, bool allowed);

// out [B,T,Hq,D] = softmax(causal(q·kᵀ/sqrt(D)))·v per head, and lse f32 [B,Hq,T], the natural log of each
// row's softmax denominator, which the backward needs. out and lse must not overlap the inputs.
void attention(Program& p, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
               const AttentionOptions& opt = {});

// f32 elements of scratch that attention_backward needs for q [B,T,Hq,D]: one per (b, query head, t).
int64_t attention_backward_scratch_elems(const Tensor& q);

// dq, dk, dv (overwritten) from dout and the forward's out and lse, with the same options as the forward.
// dk and dv are summed over the query heads sharing a kv head in a fixed order: the same bits every run.
// The outputs and scratch must not overlap each other or the inputs.
void attention_backward(Program& p, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                        const Tensor& scratch, const AttentionOptions& opt = {});

}  // namespace vkm::ops
