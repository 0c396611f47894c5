// PEFT parity: LoRA adapters that PEFT itself made, saved and loaded back (training/peft_fixture.py,
// run by `npm run real-model`) on a tiny random Llama. For each adapter config (rank_pattern and
// alpha_pattern, a regex target_modules, layers_to_transform, rsLoRA, 'all-linear', exclude_modules,
// and corners of PEFT's matching), the engine must put a LoRA on the modules PEFT put one on, with
// PEFT's rank, alpha and scale, and give PEFT's next-token logits within 1e-4 as a delta blend of
// weight 1, on CPU and on WebGPU (the `webgpu` package).
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { CrayonEngine } from './engine';
import { loadCheckpoint } from './loader';
import { moduleConfig, parseAdapterConfig, TARGETS } from './lora';
import { maxAbsDiff } from './testing/compare';
import { fsSource, readAdapterDir } from './testing/fs-source';
import { realModelDir } from './testing/real-model';
import { nodeGpu } from '../gpu/node-gpu';

interface PeftModule { name: string; layer: number; target: string; r: number; alpha: number; scale: number }
interface Fixture {
  peft: string;
  base: string;
  vocab: number;
  nLayers: number;
  sequences: number[][];
  baseLogits: string;
  adapters: { id: string; dir: string; checks: string; modules: PeftModule[]; logits: string; maxAbsDiffFromBase: number }[];
}

const dir = `${realModelDir()}/reference/peft`;
if (!existsSync(`${dir}/fixture.json`)) {
  throw new Error(`The PEFT fixture is not at ${dir}: run \`npm run real-model\` (training/peft_fixture.py writes it after the real model).`);
}
const fx = JSON.parse(readFileSync(`${dir}/fixture.json`, 'utf8')) as Fixture;
/** [sequences, vocab] f32 LE, one row per sequence. */
const rows = (file: string): Float32Array[] => {
  const b = readFileSync(`${dir}/${file}`);
  const all = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return fx.sequences.map((_, i) => all.subarray(i * fx.vocab, (i + 1) * fx.vocab));
};
const baseLogits = rows(fx.baseLogits);
const adapterDir = (id: string) => `${dir}/${fx.adapters.find((a) => a.id === id)!.dir}`;

describe(`adapter configs read as PEFT ${fx.peft} reads them`, () => {
  it('covers every module-selection feature the engine implements', () => {
    const configs = fx.adapters.map((a) => readAdapterDir(adapterDir(a.id)).config as Record<string, unknown>);
    expect(configs.some((c) => Object.keys(c.rank_pattern as object).length && Object.keys(c.alpha_pattern as object).length)).toBe(true);
    expect(configs.some((c) => typeof c.target_modules === 'string' && c.target_modules !== 'all-linear')).toBe(true);
    expect(configs.some((c) => c.target_modules === 'all-linear')).toBe(true);
    expect(configs.some((c) => Array.isArray(c.layers_to_transform))).toBe(true);
    expect(configs.some((c) => c.use_rslora === true)).toBe(true);
    expect(configs.some((c) => Array.isArray(c.exclude_modules))).toBe(true);
    expect(configs.some((c) => typeof c.exclude_modules === 'string')).toBe(true);
  });

  it.each(fx.adapters.map((a) => [a.id, a] as const))('%s: a LoRA where PEFT put one, with its rank, alpha and scale', (id, a) => {
    const config = parseAdapterConfig(readAdapterDir(adapterDir(id)).config, id);
    // Scales to 6 decimals: PEFT's come from Python floats (alpha / r, alpha / sqrt(r)), the engine's from JS's.
    const show = (m: { r: number; alpha: number; scale: number } | null | undefined) => (m ? `r ${m.r}, alpha ${m.alpha}, scale ${m.scale.toFixed(6)}` : 'no LoRA');
    const differ: string[] = [];
    for (let layer = 0; layer < fx.nLayers; layer++) {
      for (const t of TARGETS) {
        const engine = show(moduleConfig(config, layer, t));
        const peft = show(a.modules.find((x) => x.layer === layer && x.target === t));
        if (engine !== peft) differ.push(`layer ${layer} ${t}: engine ${engine}, PEFT ${peft}`);
      }
    }
    expect(differ, a.checks).toEqual([]);
  });
});

describe.each(['cpu', 'webgpu'] as const)('next-token logits on %s against PEFT (max abs diff <= 1e-4)', (backend) => {
  let engine: Promise<CrayonEngine> | null = null;
  const open = () =>
    (engine ??= (async () => {
      const gpu = backend === 'webgpu' ? (await nodeGpu()).device : undefined;
      const e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${dir}/${fx.base}`), { requireTokenizer: false }), { backend, gpu });
      expect(e.info()).toMatchObject({ backend, weightFormat: 'f32' });
      return e;
    })());
  afterAll(async () => (await engine)?.unload());

  it('the base model, as transformers computes it', async () => {
    const e = await open();
    await e.setBlend(null);
    for (const [i, ids] of fx.sequences.entries()) expect(maxAbsDiff(await e.logitsFor(ids), baseLogits[i]), `sequence ${i}`).toBeLessThanOrEqual(1e-4);
  });

  it.each(fx.adapters.map((a) => [a.id, a] as const))('%s as a delta blend of weight 1', async (id, a) => {
    const want = rows(a.logits);
    // The adapter moves PEFT's logits far beyond the bound, so applying it wrongly (or not at all) shows.
    want.forEach((w, i) => expect(maxAbsDiff(w, baseLogits[i]), `sequence ${i}`).toBeGreaterThan(0.05));
    const e = await open();
    await e.loadAdapter(id, readAdapterDir(adapterDir(id)));
    try {
      await e.setBlend({ mode: 'delta', weights: { [id]: 1 } });
      for (const [i, ids] of fx.sequences.entries()) expect(maxAbsDiff(await e.logitsFor(ids), want[i]), `${a.checks}; sequence ${i}`).toBeLessThanOrEqual(1e-4);
    } finally {
      await e.setBlend(null);
      await e.removeAdapter(id);
    }
  });
});
