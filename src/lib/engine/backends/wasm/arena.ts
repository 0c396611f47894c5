// The CPU engine's weights in one WebAssembly memory, and the SIMD128 kernels (kernels.wat) that
// read them there. The engine copies each f32 tensor into the arena as it loads (adopt), keeping
// only that copy; the Weights' Float32Arrays are views of the memory, so everything else (merged
// blends written in place, WebGPU's upload, the embedder) works on them unchanged. ops.ts's matvec
// sends a mat-vec to the arena whose memory holds its weights (arenaOf), and to matvecJs, the
// readable reference, otherwise. The memory is sized once and never grows, so no view detaches.
import { AppError } from '../../../errors';
import { expectedShapes, type ModelConfig } from '../../config';
import { KERNELS_WASM_BASE64 } from './kernels.wasm';

const PAGE_BYTES = 65536;
/** A 32-bit memory's most pages (4 GiB), which Node 20 and Chromium both grant. */
const MAX_PAGES = 65536;
/** Tensors start on 16-byte boundaries (a v128's width). */
const ALIGN = 16;

/** i32.const 0; i8x16.splat; i8x16.popcnt: valid only where the final SIMD128 is (wasm-feature-detect's probe). */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Whether this runtime has WebAssembly with SIMD128 (Node 20 and Chromium 91+ do). */
export function wasmSimdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
}

interface Kernels {
  /** out[o] = sum_i w[o, i] x[i] for o < rows; byte addresses into the memory. */
  matvec(out: number, w: number, x: number, rows: number, n: number): void;
}

let compiled: WebAssembly.Module | null = null;
/** Compiled once per thread; synchronous, which Chromium's main thread allows for modules under 4 KB (this one is ~1 KB). */
function kernelModule(): WebAssembly.Module {
  if (!compiled) compiled = new WebAssembly.Module(Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0)));
  return compiled;
}

const arenas = new WeakMap<ArrayBufferLike, WasmArena>();

/** The arena whose memory holds `a`, if any: where ops.ts sends a mat-vec on `a`. */
export function arenaOf(a: Float32Array): WasmArena | undefined {
  return arenas.get(a.buffer);
}

export class WasmArena {
  readonly memory: WebAssembly.Memory;
  /** memory.buffer, read once: the memory never grows, so this is its buffer for good. */
  private readonly buffer: ArrayBuffer;
  private readonly heap: Float32Array;
  private readonly kernels: Kernels;
  /** Next free byte. */
  private top = 0;
  /** Where x and y go when the caller's vectors live outside the memory: [maxIn] then [maxOut] floats. */
  private readonly scratchIn: number;
  private readonly scratchOut: number;
  private readonly maxIn: number;
  private readonly maxOut: number;

  /**
   * An arena of `floats` floats (plus `tensors` alignments) and scratch for mat-vecs with rows of up to
   * `maxIn` and `maxOut` outputs per call. Throws 'backend-unavailable' without SIMD128 or past 4 GiB.
   */
  constructor(floats: number, tensors: number, maxIn: number, maxOut: number) {
    if (!wasmSimdSupported()) throw new AppError('backend-unavailable', 'This runtime has no WebAssembly SIMD, which the CPU engine\'s fast kernels need.');
    const bytes = (floats + maxIn + maxOut) * 4 + (tensors + 2) * ALIGN;
    const pages = Math.ceil(bytes / PAGE_BYTES);
    if (pages > MAX_PAGES) {
      throw new AppError('backend-unavailable', `The model's weights take ${(bytes / 2 ** 30).toFixed(2)} GiB as f32, more than a WebAssembly memory's 4 GiB.`, { bytes });
    }
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.buffer = this.memory.buffer;
    this.heap = new Float32Array(this.buffer);
    this.kernels = new WebAssembly.Instance(kernelModule(), { env: { memory: this.memory } }).exports as unknown as Kernels;
    this.maxIn = maxIn;
    this.maxOut = maxOut;
    this.scratchIn = this.alloc(maxIn).byteOffset;
    this.scratchOut = this.alloc(maxOut).byteOffset;
    arenas.set(this.buffer, this);
  }

  /** An arena sized for every weight tensor of `cfg` (the shapes the loader checks). */
  static forModel(cfg: ModelConfig): WasmArena {
    const shapes = [...expectedShapes(cfg).values()];
    const floats = shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    const matrices = shapes.filter((sh) => sh.length === 2);
    return new WasmArena(floats, shapes.length, Math.max(...matrices.map((sh) => sh[1])), Math.max(...matrices.map((sh) => sh[0])));
  }

  /** Bytes of the memory, weights and scratch together. */
  get bytes(): number {
    return this.buffer.byteLength;
  }

  /** A zeroed view of `n` floats, 16-byte aligned. */
  alloc(n: number): Float32Array {
    const at = Math.ceil(this.top / ALIGN) * ALIGN;
    if (at + n * 4 > this.buffer.byteLength) {
      throw new AppError('internal', `The WebAssembly arena is full: ${n} more floats do not fit in ${this.buffer.byteLength} bytes.`);
    }
    this.top = at + n * 4;
    return new Float32Array(this.buffer, at, n);
  }

  /** A copy of `a` in the arena (the caller drops `a`, so the weights are held once). */
  adopt(a: Float32Array): Float32Array {
    const v = this.alloc(a.length);
    v.set(a);
    return v;
  }

  /**
   * out[o] = sum_i w[o, i] x[i] for o < rows, with w a view of this arena. x and out may be anywhere:
   * outside the memory they go through its scratch (576-1,536 floats in and up to a vocabulary out,
   * cheap beside the rows*n weights read). Same contract as ops.ts's matvecJs.
   */
  matvec(out: Float32Array, w: Float32Array, x: Float32Array, rows: number, n: number): void {
    if (rows * n > w.length || n > x.length || rows > out.length) {
      throw new AppError('invalid-argument', `matvec of [${rows}, ${n}] on ${w.length} weights, ${x.length} inputs and ${out.length} outputs.`);
    }
    let xAt = x.byteOffset;
    if (x.buffer !== this.buffer) {
      if (n > this.maxIn) throw new AppError('invalid-argument', `matvec rows of ${n} exceed the arena's scratch of ${this.maxIn}.`);
      this.heap.set(x.length === n ? x : x.subarray(0, n), this.scratchIn / 4);
      xAt = this.scratchIn;
    }
    if (out.buffer === this.buffer) {
      this.kernels.matvec(out.byteOffset, w.byteOffset, xAt, rows, n);
      return;
    }
    for (let o = 0; o < rows; o += this.maxOut) {
      const m = Math.min(this.maxOut, rows - o);
      this.kernels.matvec(this.scratchOut, w.byteOffset + o * n * 4, xAt, m, n);
      out.set(this.heap.subarray(this.scratchOut / 4, this.scratchOut / 4 + m), o);
    }
  }
}
