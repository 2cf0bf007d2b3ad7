#pragma once
// Token embedding (shaders/embedding.comp): a table [V, C] looked up by i32 ids of any shape [...], giving
// out [..., C]. Ids outside [0, V) read nothing: their output row is zeros and backward drops their gradient,
// so the pair stays consistent and never touches memory past the table; embedding_count_bad_ids reports them
// (a data bug, or padding marked with -1 on purpose).
#include "engine/program.hpp"

namespace vkm::ops {

// out[..., :] = table[ids[...], :]. table f32 with out f32, f16 or bf16 (rounded to nearest even), or table
// f16 or bf16 with out of the same type: the mixed path reads either the f32 master table or its 16-bit
// working copy (the one the tied output head multiplies by). out must not overlap table or ids.
void embedding(Program& p, const Tensor& table, const Tensor& ids, const Tensor& out);

// dtable[v, :] += the sum of dout[..., :] over the positions whose id is v, added in position order, so the
// bits are the same run to run however often an id repeats. It accumulates because the table is tied to the
// output head, whose weight gradient adds into the same tensor. dtable is f32; dout f32, f16 or bf16.
void embedding_backward(Program& p, const Tensor& ids, const Tensor& dout, const Tensor& dtable);

// count[0] += the number of ids outside [0, vocab); count is u32 [1], zeroed by the caller when it starts
// counting (ops::fill), read whenever convenient.
void embedding_count_bad_ids(Program& p, const Tensor& ids, int64_t vocab, const Tensor& count);

}  // namespace vkm::ops
