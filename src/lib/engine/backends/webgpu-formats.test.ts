// WebGPU's 16-bit weight storage (f16 and bf16 widened in the kernel) on the
// world's device model, an f32 checkpoint: the GPU must give the CPU
// reference's logits on the same weights rounded to the format, with and
// without a blend (both compute in f32, so they agree to ~2e-6). (The PyTorch parity of checkpoints stored
// in f16 and bf16 is in parity.test.ts.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { worldDir } from '../../../../training/world-dir';
import { nodeGpu } from '../../gpu/node-gpu';
import { CrayonEngine } from '../engine';
import { packHalf, unpackHalf } from '../half';
import { loadCheckpoint } from '../loader';
import type { Blend } from '../lora';
import { maxAbsDiff } from '../testing/compare';
import { fsSource, readAdapterDir } from '../testing/fs-source';

const world = worldDir();
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: { id: string; path: string }[] };
const prompt = [0, 5, 17, 33, 101, 250, 7, 64];

async function engine(backend: 'cpu' | 'webgpu', gpuWeights: 'f32' | 'f16' | 'bf16') {
  const gpu = backend === 'webgpu' ? (await nodeGpu()).device : undefined;
  const e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend, gpu, gpuWeights, contextLength: 64 });
  for (const a of pool.adapters.slice(0, 3)) await e.loadAdapter(a.id, readAdapterDir(`${world}/device-pool/${a.path}`));
  return e;
}

describe.each(['f16', 'bf16'] as const)('WebGPU with %s weights', (format) => {
  it('holds the weights in half the bytes of f32 (only the norms stay f32)', async () => {
    const half = (await engine('webgpu', format)).info();
    const full = (await engine('webgpu', 'f32')).info();
    const cpu = (await engine('cpu', format)).info();
    expect(full.weightFormat).toBe('f32');
    expect(full.weightBytes).toBe(cpu.weightBytes); // the same tensors, f32 on both
    expect(full.weightBytes).toBeGreaterThanOrEqual(4 * cpu.params);
    const ratio = half.weightBytes! / full.weightBytes!;
    expect(ratio).toBeGreaterThanOrEqual(0.5);
    expect(ratio).toBeLessThan(0.51);
  }, 240_000);

  it('matches the CPU on the same rounded weights (1e-4), unblended and with a delta blend', async () => {
    const gpu = await engine('webgpu', format);
    expect(gpu.info().weightFormat).toBe(format);
    const cpu = await engine('cpu', format);
    expect(cpu.info().weightFormat).toBe('f32');
    const w = cpu.weights; // the tensors WebGPU stores in the format, rounded the same way in place
    for (const t of [w.embed, w.head, ...w.layers.flatMap((L) => Object.values(L.proj).map((p) => p.w))]) t.set(unpackHalf(packHalf(t, format), t.length, format));

    const exact = await (await engine('cpu', format)).logitsFor(prompt); // f32 weights, not rounded
    const blend: Blend = { mode: 'delta', weights: Object.fromEntries(pool.adapters.slice(0, 3).map((a, i) => [a.id, 0.2 + 0.3 * i])) };
    for (const b of [null, blend]) {
      gpu.setBlendSync(b);
      cpu.setBlendSync(b);
      const g = await gpu.logitsFor(prompt);
      expect(maxAbsDiff(g, await cpu.logitsFor(prompt)), `${format}, ${b ? 'blend' : 'base'}`).toBeLessThanOrEqual(1e-4);
      // The rounding is real (the f32 weights' logits differ by 4e-3 in f16, 2e-2 in bf16), and the GPU follows it.
      if (!b) expect(maxAbsDiff(g, exact)).toBeGreaterThan(1e-3);
    }
  }, 240_000);
});

describe('the gpuWeights option', () => {
  it("keeps an f32 checkpoint in f32 under 'auto' and rejects an unknown format with a typed error", async () => {
    const { device } = await nodeGpu();
    const ckpt = await loadCheckpoint(fsSource(`${world}/device`));
    expect((await CrayonEngine.create(ckpt, { backend: 'webgpu', gpu: device, contextLength: 16 })).info().weightFormat).toBe('f32');
    await expect(CrayonEngine.create(ckpt, { backend: 'webgpu', gpu: device, gpuWeights: 'f8' as never })).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringMatching(/gpuWeights must be/) });
  }, 240_000);
});
