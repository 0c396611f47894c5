// The CPU mat-vec against a plain double-precision sum, on shapes that hit every
// remainder path (rows not a multiple of 4, odd row lengths, a single row).
import { describe, expect, it } from 'vitest';
import { matvec } from './ops';

describe('matvec', () => {
  it('gives W x for every row count and row length from 1 to 9', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    for (let rows = 1; rows <= 9; rows++) {
      for (let n = 1; n <= 9; n++) {
        const w = Float32Array.from({ length: rows * n }, rand);
        const x = Float32Array.from({ length: n }, rand);
        const out = new Float32Array(rows).fill(NaN);
        matvec(out, w, x, rows, n);
        for (let o = 0; o < rows; o++) {
          let want = 0;
          for (let i = 0; i < n; i++) want += w[o * n + i] * x[i];
          expect(out[o], `${rows}x${n}, row ${o}`).toBeCloseTo(want, 5);
        }
      }
    }
  });
});
