// WebGPU's LoRA path against the CPU reference (itself checked against PyTorch
// in parity.test.ts) on the device model, with adapters unlike the fixtures':
// one targeting only q_proj and v_proj (PEFT's default), so a projection group
// mixes projections with and without LoRA, and one of rank 3 (not a multiple of 4, so padded) with rsLoRA on
// k, o, gate and down. A sequence of blends walks every change the backend
// follows (new weights for the same adapters, a new set of adapters, factor,
// none, back to delta, an adapter reloaded under the same id), in both mat-vec
// layouts. Logits must agree within 1e-4 at every step, and every blend must
// move them far more than that.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { worldDir } from '../../../../training/world-dir';
import { nodeGpu } from '../../gpu/node-gpu';
import { CrayonEngine } from '../engine';
import { loadCheckpoint } from '../loader';
import type { Blend } from '../lora';
import { parseSafetensors, readTensor, writeSafetensors } from '../safetensors';
import { maxAbsDiff } from '../testing/compare';
import { fsSource, readAdapterDir } from '../testing/fs-source';

const world = worldDir();
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: { id: string; path: string }[] };
const poolFiles = (i: number) => readAdapterDir(`${world}/device-pool/${pool.adapters[i].path}`);
const prompt = [0, 5, 17, 33, 101, 250, 7, 64];

/** A pool adapter cut down to some projections and, optionally, to its first `rank` ranks. */
function derived(i: number, targets: string[], rank?: number, extra: Record<string, unknown> = {}) {
  const src = poolFiles(i);
  const file = parseSafetensors(src.weights);
  const r0 = (src.config as { r: number }).r;
  const r = rank ?? r0;
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [key, t] of file.tensors) {
    if (!targets.some((m) => key.includes(`.${m}.`))) continue;
    const data = readTensor(file, key);
    if (key.includes('lora_A')) tensors[key] = { shape: [r, t.shape[1]], data: data.slice(0, r * t.shape[1]) };
    else {
      const out = t.shape[0];
      const b = new Float32Array(out * r);
      for (let o = 0; o < out; o++) b.set(data.subarray(o * r0, o * r0 + r), o * r);
      tensors[key] = { shape: [out, r], data: b };
    }
  }
  return { config: { ...(src.config as object), r, target_modules: targets, ...extra }, weights: writeSafetensors(tensors) };
}

async function engine(backend: 'cpu' | 'webgpu', gpuMatvec: 'row' | 'split' = 'row') {
  const gpu = backend === 'webgpu' ? (await nodeGpu()).device : undefined;
  const e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend, gpu, gpuMatvec, contextLength: 64 });
  await e.loadAdapter('full', poolFiles(0));
  await e.loadAdapter('qv', derived(1, ['q_proj', 'v_proj']));
  await e.loadAdapter('r3', derived(2, ['k_proj', 'o_proj', 'gate_proj', 'down_proj'], 3, { lora_alpha: 6, use_rslora: true }));
  return e;
}

const steps: [string, Blend | null][] = [
  ['delta, three adapters', { mode: 'delta', weights: { full: 0.5, qv: 0.8, r3: -0.6 } }],
  ['new weights, same adapters', { mode: 'delta', weights: { full: 0.3, qv: -0.2, r3: 1.1 } }],
  ['a new set: q and v only', { mode: 'delta', weights: { qv: 1.2 } }],
  ['factor', { mode: 'factor', weights: { full: 0.7, qv: -0.4 } }],
  ['none', null],
  ['delta again after factor', { mode: 'delta', weights: { full: 0.5, qv: 0.8, r3: -0.6 } }],
  ['merged', { mode: 'merged', weights: { full: 0.6, r3: 0.9 } }],
  ['delta after merged', { mode: 'delta', weights: { r3: -1.5 } }],
];

describe.each(['row', 'split'] as const)('WebGPU LoRA (%s mat-vecs) vs the CPU', (layout) => {
  it('agrees within 1e-4 through a sequence of blends of partial-target and rsLoRA adapters', async () => {
    const gpu = await engine('webgpu', layout);
    const cpu = await engine('cpu');
    const base = await cpu.logitsFor(prompt);
    for (const [name, blend] of steps) {
      gpu.setBlendSync(blend);
      cpu.setBlendSync(blend);
      const want = await cpu.logitsFor(prompt);
      expect(maxAbsDiff(await gpu.logitsFor(prompt), want), name).toBeLessThanOrEqual(1e-4);
      if (blend) expect(maxAbsDiff(want, base), `${name} moves the logits`).toBeGreaterThan(1e-2);
    }
  }, 240_000);

  it('uses the new factors of an adapter removed and loaded again under the same id', async () => {
    const gpu = await engine('webgpu', layout);
    const cpu = await engine('cpu');
    const reference = await engine('cpu');
    await reference.loadAdapter('other', poolFiles(3));
    reference.setBlendSync({ mode: 'delta', weights: { other: 1 } });
    const want = await reference.logitsFor(prompt);
    for (const e of [gpu, cpu]) {
      e.setBlendSync({ mode: 'delta', weights: { qv: 1 } });
      const before = await e.logitsFor(prompt);
      await e.removeAdapter('qv'); // the blend loses its only adapter: nothing applies
      await e.loadAdapter('qv', poolFiles(3));
      e.setBlendSync({ mode: 'delta', weights: { qv: 1 } });
      const after = await e.logitsFor(prompt);
      expect(maxAbsDiff(after, before)).toBeGreaterThan(1e-2);
      expect(maxAbsDiff(after, want), e.info().backend).toBeLessThanOrEqual(1e-4);
    }
  }, 240_000);
});

describe('the gpuMatvec option', () => {
  it('rejects an unknown layout with a typed error', async () => {
    const { device } = await nodeGpu();
    const ckpt = await loadCheckpoint(fsSource(`${world}/device`));
    await expect(CrayonEngine.create(ckpt, { backend: 'webgpu', gpu: device, gpuMatvec: 'tiled' as never })).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringMatching(/gpuMatvec must be/) });
  });
});
