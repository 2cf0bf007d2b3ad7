#version 450
// Token embedding: a table [vocab, cols] looked up by i32 ids, and its gradient. An id outside [0, vocab)
// reads nothing: its output row is zeros and its gradient row is dropped (the forward and backward agree,
// and the op never reads or writes past the table); count_bad_ids reports how many there were.
// The skips place each tensor inside a binding that starts at an aligned offset below it.
//
// forward_*: out[r, c] = table[ids[r], c] for each position r, grid-stride over out.
// backward_*: dtable[v, c] += sum over positions r with ids[r] == v of dout[r, c], in increasing r, so the
// bits are the same run to run. Workgroup (x, y) owns vocabulary rows [x*ROWS, x*ROWS + ROWS) and columns
// [y*W, y*W + W) (W threads, one column each), so no two workgroups touch one element and no float atomics
// are needed. It walks all ids in chunks of W: each thread checks one id, a bitmask in shared memory (an
// integer OR, order-free) marks the chunk's positions that fall in the block, and every thread then visits
// just those positions in order, adding its column of dout into a per-row sum in shared memory.
// Cost: each workgroup reads every id once (cache-resident); dout is read and dtable updated once overall.
// count_bad_ids: count += the number of ids outside [0, vocab) (integer atomics: the total is exact).
// out and dout are stored as ACT_TYPE says (storage.glsl: f32, f16, bf16); the table has out's type (rows are
// copied as they are), or is f32 with TABLE_F32 (rounded once to out's type).
//! variant forward_f32_f32 -DFORWARD -DACT_TYPE=0
//! variant forward_f16_f16 -DFORWARD -DACT_TYPE=1
//! variant forward_f32_f16 -DFORWARD -DACT_TYPE=1 -DTABLE_F32
//! variant forward_bf16_bf16 -DFORWARD -DACT_TYPE=2
//! variant forward_f32_bf16 -DFORWARD -DACT_TYPE=2 -DTABLE_F32
//! variant backward_f32 -DBACKWARD -DACT_TYPE=0
//! variant backward_f16 -DBACKWARD -DACT_TYPE=1
//! variant backward_bf16 -DBACKWARD -DACT_TYPE=2
//! variant count_bad_ids -DCOUNT_BAD_IDS
#include "storage.glsl"
layout(local_size_x_id = 0) in;

#ifdef FORWARD
#ifdef TABLE_F32
#define TABLE float
#define CONVERT(v) STORE(v)
#else
#define TABLE ACT
#define CONVERT(v) (v)
#endif
layout(std430, binding = 0) readonly buffer Table { TABLE table[]; };
layout(std430, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, binding = 2) writeonly buffer Out { ACT o[]; };
layout(push_constant) uniform Push { uint positions, cols, vocab, table_skip, ids_skip, out_skip; };

void main() {
  uint n = positions * cols, stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
    uint r = i / cols, c = i - r * cols;
    uint id = uint(ids[ids_skip + r]);  // a negative id wraps past vocab
    o[out_skip + i] = id < vocab ? CONVERT(table[table_skip + id * cols + c]) : STORE(0.0);
  }
}
#endif

#ifdef BACKWARD
layout(constant_id = 1) const uint ROWS = 8;  // vocabulary rows per workgroup
const uint W = gl_WorkGroupSize.x;
const uint WORDS = (W + 31) / 32;
layout(std430, binding = 0) readonly buffer Ids { int ids[]; };
layout(std430, binding = 1) readonly buffer Grad { ACT dout[]; };
layout(std430, binding = 2) buffer Table { float dtable[]; };
layout(push_constant) uniform Push { uint positions, cols, vocab, ids_skip, dout_skip, dtable_skip; };

shared uint chunk_row[W];     // each chunk position's row within the block (read only where marked)
shared uint marked[WORDS];    // bit j: position j of the chunk has an id in the block
shared float sums[ROWS * W];  // sums[row * W + thread]: only ever touched by its own thread

void main() {
  uint t = gl_LocalInvocationID.x, c = gl_WorkGroupID.y * W + t;
  uint v0 = gl_WorkGroupID.x * ROWS, block = min(ROWS, vocab - v0);
  for (uint r = 0; r < ROWS; ++r) sums[r * W + t] = 0.0;
  for (uint base = 0; base < positions; base += W) {
    if (t < WORDS) marked[t] = 0u;
    barrier();
    if (base + t < positions) {
      uint row = uint(ids[ids_skip + base + t]) - v0;  // ids outside the block, or out of range, wrap high
      chunk_row[t] = row;
      if (row < block) atomicOr(marked[t / 32], 1u << (t % 32));
    }
    barrier();
    if (c < cols) {
      for (uint w = 0; w < WORDS; ++w) {
        for (uint bits = marked[w]; bits != 0u; bits &= bits - 1u) {
          uint j = w * 32 + uint(findLSB(bits));
          sums[chunk_row[j] * W + t] += LOAD(dout[dout_skip + (base + j) * cols + c]);
        }
      }
    }
    barrier();  // the chunk is read by all before the next one overwrites it
  }
  if (c < cols)
    for (uint r = 0; r < block; ++r) dtable[dtable_skip + (v0 + r) * cols + c] += sums[r * W + t];
}
#endif

#ifdef COUNT_BAD_IDS
layout(std430, binding = 0) readonly buffer Ids { int ids[]; };
layout(std430, binding = 1) buffer Count { uint count[]; };
layout(push_constant) uniform Push { uint n, vocab, ids_skip, count_skip; };

void main() {
  uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride)
    if (uint(ids[ids_skip + i]) >= vocab) atomicAdd(count[count_skip], 1u);
}
#endif
