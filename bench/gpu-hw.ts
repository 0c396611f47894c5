// WebGPU on a real GPU, in Node through the `webgpu` package (Dawn, Vulkan):
// the engine's parity with the PyTorch fixtures (as parity.test.ts checks on
// SwiftShader) and its speed beside the CPU engine on the same machine. Made
// for the device tool's GPU machine, which has no Node: `bench/gpu-hw.sh`
// bundles this file and carries Node and Dawn there. Writes $OUT/gpu-hw.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { CrayonEngine } from '../src/lib/engine/engine';
import { loadCheckpoint } from '../src/lib/engine/loader';
import { maxAbsDiff } from '../src/lib/engine/testing/compare';
import { fsSource, readAdapterDir } from '../src/lib/engine/testing/fs-source';
import { nodeGpu } from '../src/lib/gpu/node-gpu';
import { worldDir } from '../training/world-dir';
import { allCells } from './engine-cells';
import { loraScale } from './lora-scale';
import { median } from './stats';

interface Fixture {
  prompts: { ids: number[] }[];
  embedding: number[][];
  cases: { name: string; blend: { mode: 'delta' | 'factor'; weights: Record<string, number> } | null; logits: number[][]; greedy: number[][] }[];
}
const world = worldDir();
const models = [
  { name: 'device', dir: `${world}/device`, fixture: `${world}/fixtures/device.json`, adapter: (id: string) => `${world}/device-pool/${id}` },
  { name: 'tiny-llama', dir: `${world}/fixtures/tiny-llama`, fixture: `${world}/fixtures/tiny-llama/fixture.json`, adapter: (id: string) => `${world}/fixtures/tiny-llama/adapter-${id}` },
  { name: 'tiny-qwen2', dir: `${world}/fixtures/tiny-qwen2`, fixture: `${world}/fixtures/tiny-qwen2/fixture.json`, adapter: (id: string) => `${world}/fixtures/tiny-qwen2/adapter-${id}` },
];

const { adapter, device } = await nodeGpu();
const info = adapter.info;
const result: Record<string, unknown> = {
  gpu: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isFallbackAdapter: info.isFallbackAdapter, shaderF16: adapter.features.has('shader-f16'), features: [...adapter.features].sort() },
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version },
};

const parity: Record<string, { weightFormat?: string; logitsMaxAbsDiff: number; mergedMaxAbsDiff: number; greedyMatches: string; embedMaxAbsDiff: number }> = {};
// Each model under both mat-vec layouts: `device` is the default (row), `device:split` the other.
for (const [m, layout] of models.flatMap((m) => (['row', 'split'] as const).map((l) => [m, l] as const))) {
  const name = layout === 'row' ? m.name : `${m.name}:split`;
  const fx = JSON.parse(readFileSync(m.fixture, 'utf8')) as Fixture;
  const e = await CrayonEngine.create(await loadCheckpoint(fsSource(m.dir), { requireTokenizer: false }), { backend: 'webgpu', gpu: device, gpuMatvec: layout });
  for (const id of new Set(fx.cases.flatMap((c) => Object.keys(c.blend?.weights ?? {})))) await e.loadAdapter(id, readAdapterDir(m.adapter(id)));
  let logits = 0;
  let greedyOk = 0;
  let greedyAll = 0;
  for (const c of fx.cases) {
    e.setBlendSync(c.blend);
    for (const [i, p] of fx.prompts.entries()) {
      logits = Math.max(logits, maxAbsDiff(await e.logitsFor(p.ids), c.logits[i]));
      greedyAll++;
      if (JSON.stringify(await e.greedyIds(p.ids, c.greedy[i].length)) === JSON.stringify(c.greedy[i])) greedyOk++;
    }
  }
  const multi = fx.cases.find((x) => x.blend?.mode === 'delta' && Object.keys(x.blend.weights).length > 1)!;
  e.setBlendSync({ mode: 'merged', weights: multi.blend!.weights });
  const merged = maxAbsDiff(await e.logitsFor(fx.prompts[0].ids), multi.logits[0]);
  e.setBlendSync(null);
  const embed = Math.max(...fx.prompts.map((p, i) => maxAbsDiff(e.embedIds(p.ids), fx.embedding[i])));
  parity[name] = { weightFormat: e.info().weightFormat, logitsMaxAbsDiff: logits, mergedMaxAbsDiff: merged, greedyMatches: `${greedyOk}/${greedyAll}`, embedMaxAbsDiff: embed };
  console.log(name, parity[name]);
  await e.unload();
}
result.parity = parity;

// Speed: the reference device model with its pool, WebGPU vs the CPU engine, same machine and run.
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: { id: string }[] };
const ids = pool.adapters.map((a) => a.id);
const REPS = Number(process.env.REPS ?? 5);
const cells: Record<string, unknown> = {};
// webgpu_split: mat-vecs with 16 invocations per row (gpuMatvec 'split'); webgpu_f16: the weights
// stored in f16 (rounded from the f32 checkpoint). Both beside the default (row mat-vecs, f32).
for (const name of ['webgpu', 'webgpu_split', 'webgpu_f16', 'cpu'] as const) {
  const backend = name === 'cpu' ? 'cpu' : 'webgpu';
  const e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend, gpu: backend === 'webgpu' ? device : undefined, gpuWeights: name === 'webgpu_f16' ? 'f16' : 'f32', gpuMatvec: name === 'webgpu_split' ? 'split' : 'row' });
  for (const id of ids) await e.loadAdapter(id, readAdapterDir(`${world}/device-pool/${id}`));
  const c = await allCells(e, ids, REPS);
  // Switching weights over the same adapters (the engine bench's blend_switch), and to a new set of adapters (restacks factors).
  const switchMs = (weightsAt: (i: number) => Record<string, number>) => {
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      e.setBlendSync({ mode: 'delta', weights: weightsAt(i) });
      times.push(performance.now() - t);
    }
    return median(times);
  };
  const sameSet = switchMs((i) => Object.fromEntries(ids.map((id, j) => [id, 0.1 + ((i + j) % 5) / 5])));
  const newSet = switchMs((i) => Object.fromEntries(ids.map((id, j) => [id, ((i + j) % 5) / 5])));
  cells[name] = { ...c, blend_switch_ms: sameSet, blend_switch_new_adapter_set_ms: newSet };
  console.log(name, cells[name]);
  await e.unload();
}
result.cells = cells;
// The same cost at a real model's shapes (SmolLM2-135M, random weights): see lora-scale.ts.
// (WebGPU only here: the single-threaded CPU engine takes minutes at this size; lora-scale.ts measures it.)
const out = process.env.OUT ?? 'bench/tmp';
mkdirSync(out, { recursive: true });
writeFileSync(`${out}/gpu-hw.json`, JSON.stringify({ ...result, date: new Date().toISOString() }, null, 2)); // in case what follows runs out of time
result.loraScale = await loraScale(['webgpu', 'webgpu_split'], 3, device);
writeFileSync(`${out}/gpu-hw.json`, JSON.stringify({ ...result, date: new Date().toISOString() }, null, 2));
console.log(`wrote ${out}/gpu-hw.json`);
process.exit(0);
