#version 450
// Rotary position embedding over rows of D = 2 * pairs elements (one head of one token), grid-stride over
// the (row, i) pairs: element i turns with element i + pairs by the angle whose (cos, sin) is
// table[t][i], t the row's token, y[i] = x[i] cos - x[i + pairs] sin, y[i + pairs] = x[i + pairs] cos + x[i] sin.
// With `transpose` the pair turns back (sin negated): the backward. Each pair is read and written by one
// invocation, so y may be x itself. x and y are f32, f16 or bf16 (ACT_TYPE, storage.glsl); the table and
// arithmetic are fp32.
// Rows are row0 + r of [B, T, H] (row0: this piece's first); the table binding starts at the first
// position used. Each binding starts `*_skip` elements below what it holds (aligned offsets).
// AT variants (decoding) read each token's position from a buffer instead, positions [B, T], the table
// binding holding all table_rows positions; a row whose position falls outside them (padding, marked -1; a
// sequence past its context) is written as zeros.
//! variant f32 -DACT_TYPE=0 -DAT=0
//! variant f16 -DACT_TYPE=1 -DAT=0
//! variant bf16 -DACT_TYPE=2 -DAT=0
//! variant at_f32 -DACT_TYPE=0 -DAT=1
//! variant at_f16 -DACT_TYPE=1 -DAT=1
//! variant at_bf16 -DACT_TYPE=2 -DAT=1
#include "storage.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { ACT x[]; };
layout(std430, binding = 1) writeonly buffer Y { ACT y[]; };
layout(std430, binding = 2) readonly buffer Table { float table[]; };  // [positions][pairs][cos, sin]
#if AT
layout(std430, binding = 3) readonly buffer Positions { int positions[]; };
#endif
layout(push_constant) uniform Push {
  uint rows, row0, T, H, pairs, x_skip, y_skip, t_skip, transpose;
  uint positions_skip, table_rows;  // AT variants only
};

void main() {
  uint n = rows * pairs, stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint p = gl_GlobalInvocationID.x; p < n; p += stride) {
    uint r = p / pairs, i = p - r * pairs;
    uint a = r * 2 * pairs + i;
#if AT
    int pos = positions[positions_skip + (row0 + r) / H];
    if (pos < 0 || pos >= int(table_rows)) {
      y[y_skip + a] = STORE(0.0);
      y[y_skip + a + pairs] = STORE(0.0);
      continue;
    }
    uint t = uint(pos);
#else
    uint t = ((row0 + r) / H) % T;
#endif
    uint at = t_skip + 2 * (t * pairs + i);
    float c = table[at], s = transpose != 0 ? -table[at + 1] : table[at + 1];
    float u = LOAD(x[x_skip + a]), v = LOAD(x[x_skip + a + pairs]);
    y[y_skip + a] = STORE(u * c - v * s);
    y[y_skip + a + pairs] = STORE(v * c + u * s);
  }
}
