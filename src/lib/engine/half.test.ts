// 16-bit packing for GPU storage: exact for values that came from 16-bit files,
// round-to-nearest-even otherwise, and typed errors for values f16 can't hold.
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { f16ToF32, f32ToBf16, f32ToF16, packHalf, unpackHalf } from './half';

describe('f16', () => {
  it('round-trips every finite f16 bit pattern exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue; // Inf and NaN
      expect(f32ToF16(f16ToF32(h)), `0x${h.toString(16)}`).toBe(h);
    }
  });

  it('rounds to the nearest f16, ties to even, including subnormals and overflow', () => {
    expect(f16ToF32(f32ToF16(1 + 2 ** -11))).toBe(1); // a tie: 1 has the even mantissa
    expect(f16ToF32(f32ToF16(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9); // a tie rounded up to even
    expect(f16ToF32(f32ToF16(1 + 2 ** -11 + 2 ** -20))).toBe(1 + 2 ** -10); // above the tie
    expect(f16ToF32(f32ToF16(2 ** -24))).toBe(2 ** -24); // the smallest subnormal
    expect(f16ToF32(f32ToF16(2 ** -25))).toBe(0); // half of it: a tie, to even (0)
    expect(f16ToF32(f32ToF16(1.5 * 2 ** -25))).toBe(2 ** -24);
    expect(f16ToF32(f32ToF16(65504))).toBe(65504);
    expect(f16ToF32(f32ToF16(65520))).toBe(Infinity); // rounds past the largest finite
    expect(f16ToF32(f32ToF16(-3.1415927))).toBeCloseTo(-3.140625, 6);
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
  });
});

describe('bf16', () => {
  it('keeps the top 16 bits of an f32, rounding to nearest even', () => {
    const bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];
    const back = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];
    for (const v of [0, -0, 1, -2.5, 3e38, 1e-38, 0.1]) expect(back(f32ToBf16(back(f32ToBf16(v))))).toBe(back(f32ToBf16(v)));
    expect(f32ToBf16(1)).toBe(bits(1) >>> 16);
    expect(back(f32ToBf16(1 + 2 ** -8))).toBe(1); // tie, to even
    expect(back(f32ToBf16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(back(f32ToBf16(0.1))).toBeCloseTo(0.1, 3);
    expect(Number.isNaN(back(f32ToBf16(NaN)))).toBe(true);
  });
});

describe('packHalf', () => {
  it('packs two values per u32, the even index in the low half, and unpacks them back', () => {
    const data = new Float32Array([1, -2, 0.5, 3]);
    const packed = packHalf(data, 'f16');
    expect(packed.length).toBe(2);
    expect(packed[0] & 0xffff).toBe(f32ToF16(1));
    expect(packed[0] >>> 16).toBe(f32ToF16(-2));
    expect([...unpackHalf(packed, 4, 'f16')]).toEqual([1, -2, 0.5, 3]);
    expect([...unpackHalf(packHalf(data, 'bf16'), 4, 'bf16')]).toEqual([1, -2, 0.5, 3]);
    expect([...unpackHalf(packHalf(new Float32Array([7, 8, 9]), 'f16'), 3, 'f16')]).toEqual([7, 8, 9]);
  });

  it("rejects values beyond f16's range with a typed error naming the tensor; bf16 holds them", () => {
    const big = new Float32Array([1, 1e5]);
    expect(() => packHalf(big, 'f16', 'Layer 0 q_proj')).toThrow(AppError);
    expect(() => packHalf(big, 'f16', 'Layer 0 q_proj')).toThrow(/Layer 0 q_proj has values beyond f16's range/);
    expect(unpackHalf(packHalf(big, 'bf16'), 2, 'bf16')[1]).toBeCloseTo(1e5, -3);
  });
});
