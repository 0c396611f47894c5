// WGSL compute kernels of the WebGPU backend. Activations, caches and LoRA
// factors are f32; the model's weights (projections, embedding, head) are f32,
// or 16-bit (f16 or bf16) packed two per u32 and widened to f32 in the kernel
// with core WGSL (unpack2x16float, bit shifts), so they need no `shader-f16`
// and run on every adapter, at half the memory and bandwidth. Shapes follow the
// CPU reference in model.ts; each kernel's header says what it computes.

export type WeightFormat = 'f32' | 'f16' | 'bf16';

/** The weight array's WGSL declaration and `w4(i)`: the i-th group of 4 consecutive weights as a vec4f. */
function weightReader(format: WeightFormat, binding: number): string {
  if (format === 'f32') return `@group(0) @binding(${binding}) var<storage, read> W: array<vec4<f32>>;
fn w4(i: u32) -> vec4f { return W[i]; }`;
  const widen = format === 'f16' ? 'unpack2x16float(u)' : 'vec2f(bitcast<f32>(u << 16u), bitcast<f32>(u & 0xffff0000u))';
  return `@group(0) @binding(${binding}) var<storage, read> W: array<vec2<u32>>; // 4 weights per element, 2 per u32, low half first
fn w2(u: u32) -> vec2f { return ${widen}; }
fn w4(i: u32) -> vec4f { let p = W[i]; return vec4f(w2(p.x), w2(p.y)); }`;
}

/**
 * How a mat-vec kernel spreads a row over invocations. `row` (the default): one
 * invocation per row, walking the whole row alone; on SwiftShader, where
 * invocations are CPU lanes, it measured 2.5-20x faster than `split`. `split`:
 * ROW_LANES invocations per row, each summing a strided part of the row, then a
 * reduction in workgroup memory. Meant for GPUs: under `row` a [64, 576] LoRA
 * factor is one workgroup whose invocations each load 144 vec4s in turn, under
 * `split` 16 workgroups whose invocations load 9 each. (Not yet measured on a
 * GPU: bench/gpu-hw.ts runs both.)
 */
export type MatvecLayout = 'row' | 'split';
/** Invocations per row under `split`; a workgroup (64) holds 64 / ROW_LANES rows. */
export const ROW_LANES = 16;
/** Rows one workgroup computes: dispatch ceil(rows / rowsPerWorkgroup) workgroups. */
export const rowsPerWorkgroup = (layout: MatvecLayout): number => (layout === 'row' ? 64 : 64 / ROW_LANES);

/** Dims.flags bits of the mat-vec kernels: what `finish` does with vecArg[r] after the dot product. */
export const MATVEC_ADD_BIAS = 1;
export const MATVEC_SCALE = 4;
/** Dims.op of the elementwise kernel. */
export const EW_ADD = 0;
export const EW_SILU_MUL = 1;

/**
 * y[r] = sum_i W[r, i] x[i], then: +bias[r] (MATVEC_ADD_BIAS), *scale[r] (MATVEC_SCALE).
 * W [rows, cols] row-major in `format`, cols % 4 == 0, 4 weights per load; rows spread by `layout`.
 * With `lora`, the kernel also adds a projection's LoRA term, y[r] += sum_j B[r, j] u[uOffset + j]
 * (B [rows, loraRank] f32; u is the A product, already scaled, maybe shared by several projections;
 * loraRank and uOffset multiples of 4), so applying a LoRA costs no dispatch beyond its A product's.
 */
export function matvecKernel(format: WeightFormat, layout: MatvecLayout = 'row', lora = false): string {
  const loraDecl = lora
    ? `@group(0) @binding(5) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> u: array<vec4<f32>>;
/** Row r's LoRA term, the vec4s first, first + step, ... of it (loraRank and uOffset are multiples of 4). */
fn loraTerm(r: u32, first: u32, step: u32) -> f32 {
  let n4 = d.loraRank / 4u;
  let b0 = r * n4;
  let u0 = d.uOffset / 4u;
  var s = vec4f(0.0);
  for (var j = first; j < n4; j += step) { s += B[b0 + j] * u[u0 + j]; }
  return s.x + s.y + s.z + s.w;
}`
    : '';
  const head = /* wgsl */ `
struct Dims { rows: u32, cols: u32, flags: u32, loraRank: u32, uOffset: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
${weightReader(format, 1)}
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> vecArg: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${loraDecl}
const ADD_BIAS = ${MATVEC_ADD_BIAS}u;
const SCALE = ${MATVEC_SCALE}u;
fn finish(r: u32, sum: f32) {
  var acc = sum;
  if ((d.flags & ADD_BIAS) != 0u) { acc += vecArg[r]; }
  if ((d.flags & SCALE) != 0u) { acc *= vecArg[r]; }
  y[r] = acc;
}`;
  if (layout === 'row') {
    return /* wgsl */ `${head}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let r = g.x;
  if (r >= d.rows) { return; }
  let n4 = d.cols / 4u;
  let base = r * n4;
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var i = 0u;
  for (; i + 1u < n4; i += 2u) {
    s0 += w4(base + i) * x[i];
    s1 += w4(base + i + 1u) * x[i + 1u];
  }
  if (i < n4) { s0 += w4(base + i) * x[i]; }
  let s = s0 + s1;
  finish(r, s.x + s.y + s.z + s.w${lora ? ' + loraTerm(r, 0u, 1u)' : ''});
}`;
  }
  return /* wgsl */ `${head}
const LANES = ${ROW_LANES}u;
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let lane = t % LANES;
  let r = wg.x * (64u / LANES) + t / LANES;
  var s = vec4f(0.0);
  var extra = 0.0;
  if (r < d.rows) {
    let n4 = d.cols / 4u;
    let base = r * n4;
    // Neighbouring lanes read neighbouring vec4s of the row: coalesced loads.
    for (var i = lane; i < n4; i += LANES) { s += w4(base + i) * x[i]; }
    ${lora ? 'extra = loraTerm(r, lane, LANES);' : ''}
  }
  part[t] = s.x + s.y + s.z + s.w + extra;
  workgroupBarrier();
  for (var k = LANES / 2u; k > 0u; k >>= 1u) {
    if (lane < k) { part[t] += part[t + k]; }
    workgroupBarrier();
  }
  if (lane == 0u && r < d.rows) { finish(r, part[t]); }
}`;
}

/** x = the embedding row of the token in p.token: E [vocab, dim] in `format`, dim % 4 == 0. */
export function embedKernel(format: WeightFormat): string {
  return /* wgsl */ `
struct Dims { dim: u32, a: u32, b: u32, c: u32 }
struct Pos { pos: u32, token: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<uniform> p: Pos;
${weightReader(format, 2)}
@group(0) @binding(3) var<storage, read_write> x: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let n4 = d.dim / 4u;
  if (g.x >= n4) { return; }
  x[g.x] = w4(p.token * n4 + g.x);
}`;
}

/** out = w * x / sqrt(mean(x^2) + eps); one workgroup. */
export const RMSNORM = /* wgsl */ `
struct Dims { n: u32, eps: f32, a: u32, b: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var i = t; i < d.n; i += 256u) { s += x[i] * x[i]; }
  part[t] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (t < k) { part[t] += part[t + k]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(part[0] / f32(d.n) + d.eps);
  for (var i = t; i < d.n; i += 256u) { out[i] = w[i] * (x[i] * inv); }
}`;

/** HF rotate_half RoPE in place on nHeads heads, from cos/sin tables [ctx, headDim/2]. */
export const ROPE = /* wgsl */ `
struct Dims { nHeads: u32, headDim: u32, a: u32, b: u32 }
struct Pos { pos: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<uniform> p: Pos;
@group(0) @binding(2) var<storage, read> cosT: array<f32>;
@group(0) @binding(3) var<storage, read> sinT: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let half = d.headDim / 2u;
  let h = g.x / half;
  let i = g.x % half;
  if (h >= d.nHeads) { return; }
  let c = cosT[p.pos * half + i];
  let s = sinT[p.pos * half + i];
  let b = h * d.headDim;
  let x0 = v[b + i];
  let x1 = v[b + i + half];
  v[b + i] = x0 * c - x1 * s;
  v[b + i + half] = x1 * c + x0 * s;
}`;

/** Writes this position's k and v into the layer's caches [ctx, kvDim]. */
export const STORE_KV = /* wgsl */ `
struct Dims { kvDim: u32, layerOffset: u32, a: u32, b: u32 }
struct Pos { pos: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<uniform> p: Pos;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> kc: array<f32>;
@group(0) @binding(5) var<storage, read_write> vc: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= d.kvDim) { return; }
  let at = d.layerOffset + p.pos * d.kvDim + g.x;
  kc[at] = k[g.x];
  vc[at] = v[g.x];
}`;

/** Grouped-query attention of one position over the cache: one workgroup per head. */
export const ATTENTION = /* wgsl */ `
struct Dims { headDim: u32, kvDim: u32, group: u32, layerOffset: u32, ctx: u32, scale: f32, a: u32, b: u32 }
struct Pos { pos: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<uniform> p: Pos;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> kc: array<f32>;
@group(0) @binding(4) var<storage, read> vc: array<f32>;
@group(0) @binding(5) var<storage, read_write> att: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let h = wg.x;
  let qo = h * d.headDim;
  let kvh = (h / d.group) * d.headDim;
  let ao = h * d.ctx;
  var m = -3.4e38;
  for (var s = t; s <= p.pos; s += 64u) {
    let ko = d.layerOffset + s * d.kvDim + kvh;
    var dot = 0.0;
    for (var i = 0u; i < d.headDim; i++) { dot += q[qo + i] * kc[ko + i]; }
    att[ao + s] = dot * d.scale;
    m = max(m, dot * d.scale);
  }
  red[t] = m;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = max(red[t], red[t + k]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var s = t; s <= p.pos; s += 64u) {
    let e = exp(att[ao + s] - mx);
    att[ao + s] = e;
    sum += e;
  }
  red[t] = sum;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  for (var i = t; i < d.headDim; i += 64u) {
    var acc = 0.0;
    for (var s = 0u; s <= p.pos; s++) { acc += att[ao + s] * vc[d.layerOffset + s * d.kvDim + kvh + i]; }
    out[qo + i] = acc / total;
  }
}`;

/** x += y (EW_ADD) or x = silu(x) * y (EW_SILU_MUL), elementwise over n. */
export const ELEMENTWISE = /* wgsl */ `
struct Dims { n: u32, op: u32, a: u32, b: u32 }
const ADD = ${EW_ADD}u;
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x;
  if (i >= d.n) { return; }
  if (d.op == ADD) { x[i] = x[i] + y[i]; } else { let a = x[i]; x[i] = a / (1.0 + exp(-a)) * y[i]; }
}`;
