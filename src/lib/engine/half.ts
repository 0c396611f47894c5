// 16-bit floats: decoding f16 (for safetensors) and packing f32 values into
// f16 or bf16 pairs for GPU storage (two values per u32, the even index in the
// low half — the layout WGSL's unpack2x16float reads). Both pack with
// round-to-nearest-even, so a value that came from a 16-bit file packs back
// to its exact bits.
import { AppError } from '../errors';

export type HalfFormat = 'f16' | 'bf16';

/** The largest finite f16. */
export const F16_MAX = 65504;

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 -> f16 bits, round to nearest even; overflow gives ±Infinity. */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    mant |= 0x800000; // the implicit bit
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && out & 1)) out++;
    return sign | out; // a carry into the exponent field is the right result
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out++; // may carry up to Inf: right too
  return sign | out;
}

/** f32 -> bf16 bits (the top half of the f32), round to nearest even. */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40; // NaN stays NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Packs values two per u32 in `format`. Throws `invalid-argument` when a value is beyond
 * f16's range (65504), which would otherwise turn into Infinity on the GPU.
 */
export function packHalf(data: Float32Array, format: HalfFormat, what = 'a tensor'): Uint32Array {
  const out = new Uint32Array(Math.ceil(data.length / 2));
  const enc = format === 'f16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < data.length; i += 2) {
    const a = data[i];
    const b = i + 1 < data.length ? data[i + 1] : 0;
    if (format === 'f16' && (Math.abs(a) > F16_MAX || Math.abs(b) > F16_MAX)) {
      throw new AppError('invalid-argument', `${what} has values beyond f16's range (±${F16_MAX}); store it as f32 or bf16 on the GPU.`);
    }
    out[i >> 1] = (enc(a) | (enc(b) << 16)) >>> 0;
  }
  return out;
}

/** The inverse of packHalf (for tests and checks). */
export function unpackHalf(packed: Uint32Array, n: number, format: HalfFormat): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(1);
  const asF32 = new Float32Array(bits.buffer);
  for (let i = 0; i < n; i++) {
    const h = (packed[i >> 1] >>> ((i & 1) * 16)) & 0xffff;
    if (format === 'f16') out[i] = f16ToF32(h);
    else {
      bits[0] = h << 16;
      out[i] = asF32[0];
    }
  }
  return out;
}
