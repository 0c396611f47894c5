// The engine on WebAssembly SIMD kernels against the same engine on the TypeScript reference
// (EngineOptions.cpuKernels 'wasm' vs 'js'): next-token logits of the real model (SmolLM2-135M-Instruct
// from its Q4_1 GGUF) within 1e-4, and of the device model under delta, factor and merged blends of
// its adapter pool (the weights a merge rewrites in place live in the wasm memory). Also where the
// weights are held: once, as views of one memory no larger than they need.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldDir } from '../../../../../training/world-dir';
import { CrayonEngine } from '../../engine';
import { loadCheckpoint } from '../../loader';
import type { Blend } from '../../lora';
import { weightTensors } from '../../model';
import { maxAbsDiff } from '../../testing/compare';
import { fsSource, readAdapterDir } from '../../testing/fs-source';
import { REAL_MODEL, realModelDir } from '../../testing/real-model';
import { arenaOf } from './arena';

describe('the real model on wasm and TypeScript kernels', async () => {
  const dir = realModelDir();
  const parity = JSON.parse(readFileSync(`${dir}/reference/parity.json`, 'utf8')) as { prompts: { ids: number[] }[] };
  const ckpt = await loadCheckpoint(fsSource(dir), { gguf: REAL_MODEL.gguf.file });
  let wasm: CrayonEngine;
  let js: CrayonEngine;
  beforeAll(async () => {
    wasm = await CrayonEngine.create(ckpt, { backend: 'cpu', contextLength: 128 });
    js = await CrayonEngine.create(ckpt, { backend: 'cpu', contextLength: 128, cpuKernels: 'js' });
  }, 120_000);

  it('holds the weights once, in one wasm memory barely larger than them', () => {
    expect(wasm.cpuKernels).toBe('wasm-simd');
    expect(js.cpuKernels).toBe('js');
    const tensors = weightTensors(wasm.weights);
    const arena = arenaOf(tensors[0])!;
    expect(arena).toBeDefined();
    for (const t of tensors) expect(arenaOf(t)).toBe(arena);
    const weightBytes = wasm.info().weightBytes!;
    expect(weightBytes).toBe(js.info().weightBytes);
    expect(weightBytes).toBeGreaterThan(530e6);
    // weights, 16-byte alignment, scratch for one mat-vec's x and y (49,152 + 1,536 floats), one page's rounding
    expect(arena.bytes).toBeLessThan(weightBytes * 1.001);
  });

  // Prompts 0 and 2 of the PyTorch parity set (37 and 32 tokens; the TypeScript engine prefills at ~9 tok/s).
  it.each([0, 2])('gives next-token logits within 1e-4 of the TypeScript kernels, prompt %i', async (i) => {
    const ids = parity.prompts[i].ids;
    const a = await wasm.logitsFor(ids);
    const b = await js.logitsFor(ids);
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-4);
  }, 120_000);
});

describe('the device model with adapters on wasm and TypeScript kernels', () => {
  const world = worldDir();
  const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: { id: string; path: string }[] };
  const weights = Object.fromEntries(pool.adapters.map((a, i) => [a.id, (i + 1) / 36]));
  const engines: Record<'wasm' | 'js', CrayonEngine> = {} as never;
  beforeAll(async () => {
    for (const k of ['wasm', 'js'] as const) {
      const e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend: 'cpu', contextLength: 64, cpuKernels: k });
      for (const a of pool.adapters) await e.loadAdapter(a.id, readAdapterDir(`${world}/device-pool/${a.path}`));
      engines[k] = e;
    }
  });
  const ids = [1, 17, 200, 33, 512, 9, 77];

  it.each([null, { mode: 'delta', weights }, { mode: 'factor', weights }, { mode: 'merged', weights }] as (Blend | null)[])('agrees within 1e-5 under blend %o', async (blend) => {
    const [a, b] = await Promise.all([engines.wasm, engines.js].map(async (e) => {
      await e.setBlend(blend);
      const logits = (await e.logitsFor(ids)).slice();
      await e.setBlend(null);
      return logits;
    }));
    expect(engines.wasm.cpuKernels).toBe('wasm-simd');
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-5);
  });

  it('refuses an unknown cpuKernels', async () => {
    await expect(CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { cpuKernels: 'simd' as never })).rejects.toThrow(/cpuKernels must be/);
  });
});
