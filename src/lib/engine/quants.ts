// ggml's tensor types as GGUF stores them, and dequantizing each to f32 with
// the same arithmetic as the gguf package's numpy dequantize (each product and
// sum rounded to f32 in the same order), so the values are bit-identical to it.
// Block layouts (llama.cpp's ggml-common.h):
//   Q4_0 [d f16, 16 bytes of nibbles]            x = (q - 8) * d          32 values
//   Q4_1 [d f16, m f16, 16 bytes of nibbles]     x = q * d + m            32 values
//   Q8_0 [d f16, 32 × i8]                        x = q * d                32 values
//   Q4_K [d f16, dmin f16, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles]   256 values
//   Q6_K [128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 × i8 scales, d f16]   256 values
import { AppError } from '../errors';
import { f16ToF32 } from './half';

export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8, Q4_K: 12, Q6_K: 14, BF16: 30 } as const;
export type GgmlType = (typeof GGML)[keyof typeof GGML];

/** Every ggml type's name, the unsupported ones too, for error messages. */
export const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K',
  13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S',
  22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0',
};

interface Layout {
  name: string;
  /** Values per block and bytes per block. */
  values: number;
  bytes: number;
}

const LAYOUTS: Record<GgmlType, Layout> = {
  [GGML.F32]: { name: 'F32', values: 1, bytes: 4 },
  [GGML.F16]: { name: 'F16', values: 1, bytes: 2 },
  [GGML.BF16]: { name: 'BF16', values: 1, bytes: 2 },
  [GGML.Q4_0]: { name: 'Q4_0', values: 32, bytes: 18 },
  [GGML.Q4_1]: { name: 'Q4_1', values: 32, bytes: 20 },
  [GGML.Q8_0]: { name: 'Q8_0', values: 32, bytes: 34 },
  [GGML.Q4_K]: { name: 'Q4_K', values: 256, bytes: 144 },
  [GGML.Q6_K]: { name: 'Q6_K', values: 256, bytes: 210 },
};

/** The block layout of a type the engine reads, or null. */
export function blockLayout(type: number): Layout | null {
  return LAYOUTS[type as GgmlType] ?? null;
}

const fr = Math.fround;

/** `count` values of `type` from `bytes` (which hold exactly their blocks) as f32. */
export function dequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const layout = blockLayout(type);
  if (!layout) throw new AppError('unsupported-dtype', `ggml type ${GGML_TYPE_NAMES[type] ?? type} can't be dequantized by the engine.`);
  if (count % layout.values !== 0 || bytes.byteLength !== (count / layout.values) * layout.bytes) {
    throw new AppError('bad-format', `${count} ${layout.name} values need ${(count / layout.values) * layout.bytes} bytes, not ${bytes.byteLength}.`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const half = (at: number) => f16ToF32(v.getUint16(at, true));
  switch (type) {
    case GGML.F32:
      if (bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
      else for (let i = 0; i < count; i++) out[i] = v.getFloat32(i * 4, true);
      break;
    case GGML.F16:
      for (let i = 0; i < count; i++) out[i] = half(i * 2);
      break;
    case GGML.BF16: {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = v.getUint16(i * 2, true) << 16;
      break;
    }
    case GGML.Q4_0:
      for (let b = 0, o = 0, p = 0; o < count; b++, o += 32, p += 18) {
        const d = half(p);
        for (let j = 0; j < 16; j++) {
          const q = bytes[p + 2 + j];
          out[o + j] = fr(d * ((q & 15) - 8));
          out[o + j + 16] = fr(d * ((q >> 4) - 8));
        }
      }
      break;
    case GGML.Q4_1:
      for (let o = 0, p = 0; o < count; o += 32, p += 20) {
        const d = half(p);
        const m = half(p + 2);
        for (let j = 0; j < 16; j++) {
          const q = bytes[p + 4 + j];
          out[o + j] = fr(fr(d * (q & 15)) + m);
          out[o + j + 16] = fr(fr(d * (q >> 4)) + m);
        }
      }
      break;
    case GGML.Q8_0:
      for (let o = 0, p = 0; o < count; o += 32, p += 34) {
        const d = half(p);
        for (let j = 0; j < 32; j++) out[o + j] = fr(v.getInt8(p + 2 + j) * d);
      }
      break;
    case GGML.Q4_K:
      for (let o = 0, p = 0; o < count; o += 256, p += 144) q4kBlock(bytes, p, half(p), half(p + 2), out, o);
      break;
    case GGML.Q6_K:
      for (let o = 0, p = 0; o < count; o += 256, p += 210) q6kBlock(bytes, v, p, half(p + 208), out, o);
      break;
  }
  return out;
}

/** One Q4_K super-block: 8 sub-blocks of 32, each with a 6-bit scale and min packed into 12 bytes. */
function q4kBlock(bytes: Uint8Array, p: number, d: number, dmin: number, out: Float32Array, o: number): void {
  const s = p + 4; // the 12 scale bytes: [0..4) scale lows, [4..8) min lows, [8..12) high-bit nibbles
  const qs = p + 16;
  for (let j = 0; j < 8; j++) {
    const sc = j < 4 ? bytes[s + j] & 63 : (bytes[s + j + 4] & 15) | ((bytes[s + j - 4] >> 2) & 48);
    const mn = j < 4 ? bytes[s + j + 4] & 63 : (bytes[s + j + 4] >> 4) | ((bytes[s + j] >> 2) & 48);
    const ds = fr(d * sc);
    const dm = fr(dmin * mn);
    // Sub-blocks 2g and 2g+1 share 32 bytes of qs: low nibbles, then high nibbles.
    const base = qs + (j >> 1) * 32;
    const shift = (j & 1) * 4;
    for (let i = 0; i < 32; i++) out[o + j * 32 + i] = fr(fr(ds * ((bytes[base + i] >> shift) & 15)) - dm);
  }
}

/** One Q6_K super-block: 6-bit values (4 low bits in ql, 2 high bits in qh) minus 32, a signed scale per 16. */
function q6kBlock(bytes: Uint8Array, v: DataView, p: number, d: number, out: Float32Array, o: number): void {
  const ql = p;
  const qh = p + 128;
  const sc = p + 192;
  for (let i = 0; i < 256; i++) {
    const h = i >> 7; // which half of the block: 64 ql bytes and 32 qh bytes each
    const r = i & 127;
    const lo = (bytes[ql + h * 64 + (r & 63)] >> ((r >> 6) * 4)) & 15;
    const hi = (bytes[qh + h * 32 + (r & 31)] >> ((r >> 5) * 2)) & 3;
    const scale = fr(d * v.getInt8(sc + (i >> 4)));
    out[o + i] = fr(scale * ((lo | (hi << 4)) - 32));
  }
}
