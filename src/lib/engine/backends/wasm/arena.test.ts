// The WebAssembly SIMD mat-vec against ops.ts's TypeScript one (matvecJs, the reference) and a
// double-precision sum: every row count and row length from 1 to 9 (every remainder path: rows not
// a multiple of 4, rows not a multiple of 8 floats, a single row), SmolLM2-135M's real shapes, and
// x / out inside and outside the arena's memory. Plus the arena's own contract: dispatch by where
// the weights live, scratch in chunks, bad shapes refused, 16-byte alignment, a memory that can't grow.
import { describe, expect, it } from 'vitest';
import { matvec, matvecJs } from '../../ops';
import { arenaOf, WasmArena, wasmSimdSupported } from './arena';

let seed = 11;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const randArray = (n: number) => Float32Array.from({ length: n }, rand);

/** Max |a - b| relative to the largest |w| |x| sum of a row: what f32 summation order may change. */
function maxRelDiff(a: Float32Array, b: Float32Array, w: Float32Array, x: Float32Array, rows: number, n: number): number {
  let worst = 0;
  for (let o = 0; o < rows; o++) {
    let mag = 0;
    for (let i = 0; i < n; i++) mag += Math.abs(w[o * n + i] * x[i]);
    worst = Math.max(worst, Math.abs(a[o] - b[o]) / Math.max(mag, 1e-30));
  }
  return worst;
}

describe('wasm SIMD matvec', () => {
  it('runs here (Node 20 has SIMD128)', () => {
    expect(wasmSimdSupported()).toBe(true);
  });

  it('gives W x for every row count and row length from 1 to 9, x and out inside or outside the memory', () => {
    const arena = new WasmArena(81 * 81 + 2 * 9, 81 * 2, 9, 9);
    for (let rows = 1; rows <= 9; rows++) {
      for (let n = 1; n <= 9; n++) {
        const w = arena.adopt(randArray(rows * n));
        const x = randArray(n);
        const xIn = arena.adopt(x);
        const want = new Float32Array(rows);
        matvecJs(want, w, x, rows, n);
        const outside = new Float32Array(rows).fill(NaN);
        const inside = arena.alloc(rows).fill(NaN);
        matvec(outside, w, x, rows, n);
        matvec(inside, w, xIn, rows, n);
        for (let o = 0; o < rows; o++) {
          let exact = 0;
          for (let i = 0; i < n; i++) exact += w[o * n + i] * x[i];
          expect(outside[o], `${rows}x${n}, row ${o}`).toBeCloseTo(exact, 5);
          expect(inside[o], `${rows}x${n}, row ${o}, in the memory`).toBe(outside[o]);
          expect(outside[o], `${rows}x${n}, row ${o} against matvecJs`).toBeCloseTo(want[o], 5);
        }
      }
    }
  });

  // SmolLM2-135M: q/o [576, 576], k/v [192, 576], gate/up [1536, 576], down [576, 1536], logits
  // [49152, 576]; and rows past the last multiple of 8 floats at real length.
  const shapes: [number, number][] = [[576, 576], [192, 576], [1536, 576], [576, 1536], [49152, 576], [7, 1537], [3, 1543]];
  it.each(shapes)('matches matvecJs at [%i, %i]', (rows, n) => {
    const arena = new WasmArena(rows * n, 1, n, rows);
    const w = arena.adopt(randArray(rows * n));
    const x = randArray(n);
    const want = new Float32Array(rows);
    const got = new Float32Array(rows).fill(NaN);
    matvecJs(want, w, x, rows, n);
    matvec(got, w, x, rows, n);
    // Only the order of the f32 sums differs: well under one part in 1e5 of the row's magnitude.
    expect(maxRelDiff(got, want, w, x, rows, n)).toBeLessThan(1e-5);
  });

  it('sends a mat-vec to the arena that holds the weights, and plain arrays to TypeScript', () => {
    const arena = new WasmArena(64, 2, 8, 8);
    const inArena = arena.alloc(4);
    expect(arenaOf(inArena)).toBe(arena);
    expect(arenaOf(inArena.subarray(1))).toBe(arena);
    expect(arenaOf(new Float32Array(4))).toBeUndefined();
    expect(arenaOf(new Float32Array(arena.memory.buffer.slice(0)))).toBeUndefined();
  });

  it('splits rows that outnumber its output scratch into chunks', () => {
    const rows = 37, n = 5;
    const arena = new WasmArena(rows * n, 1, n, 8); // scratch for 8 outputs, 37 rows asked
    const w = arena.adopt(randArray(rows * n));
    const x = randArray(n);
    const want = new Float32Array(rows);
    const got = new Float32Array(rows).fill(NaN);
    matvecJs(want, w, x, rows, n);
    arena.matvec(got, w, x, rows, n);
    for (let o = 0; o < rows; o++) expect(got[o], `row ${o}`).toBeCloseTo(want[o], 5);
  });

  it('refuses shapes its arrays cannot hold', () => {
    const arena = new WasmArena(64, 2, 8, 8);
    const w = arena.alloc(12);
    expect(() => arena.matvec(new Float32Array(4), w, new Float32Array(4), 4, 4)).toThrow(/matvec of \[4, 4\] on 12 weights/);
    expect(() => arena.matvec(new Float32Array(2), w, new Float32Array(3), 3, 4)).toThrow(/3 inputs/);
    expect(() => arena.matvec(new Float32Array(2), w, new Float32Array(4), 3, 4)).toThrow(/2 outputs/);
  });

  it('aligns every view to 16 bytes and refuses to grow', () => {
    const arena = new WasmArena(3 + 5, 2, 1, 1);
    expect(arena.alloc(3).byteOffset % 16).toBe(0);
    expect(arena.alloc(5).byteOffset % 16).toBe(0);
    expect(() => arena.memory.grow(1)).toThrow(RangeError);
    expect(() => arena.alloc(arena.bytes / 4)).toThrow(/arena is full/);
  });
});
