// `npx tsx bench/lora-scale.ts`: decode speed with 0, 1 and 8 unmerged LoRA
// adapters (rank 8, all projections) and 8 merged, at SmolLM2-135M's shapes
// (random weights; see synthetic.ts), on the CPU engine in Node, and on WebGPU
// (both mat-vec layouts: `webgpu` row, `webgpu_split`) when
// CRAYON_NODE_GPU=hardware (a real GPU). The reference world's model is
// too small for this ratio to mean what it means at real sizes: there, 8
// rank-8 adapters add about 80% of the base model's arithmetic; here, 18%.
// Writes bench/results/lora-scale.json (or $OUT/lora-scale.json).
import { CrayonEngine } from '../src/lib/engine/engine';
import { worldDir } from '../training/world-dir';
import { allCells } from './engine-cells';
import { writeResult } from './results';
import { SMOLLM2_135M, syntheticAdapter, syntheticCheckpoint } from './synthetic';

export type Variant = 'cpu' | 'webgpu' | 'webgpu_split';

export async function loraScale(variants: Variant[], reps: number, gpu?: GPUDevice) {
  const ckpt = syntheticCheckpoint(worldDir());
  const ids = Array.from({ length: 8 }, (_, i) => `synthetic-${i}`);
  const adapters = ids.map((_, i) => syntheticAdapter(SMOLLM2_135M, 100 + i));
  const out: Record<string, unknown> = {};
  for (const variant of variants) {
    const backend = variant === 'cpu' ? 'cpu' : 'webgpu';
    const e = await CrayonEngine.create(ckpt, { backend, gpu: backend === 'webgpu' ? gpu : undefined, gpuMatvec: variant === 'webgpu_split' ? 'split' : 'row', contextLength: 256 });
    for (const [i, id] of ids.entries()) await e.loadAdapter(id, adapters[i]);
    const cells = await allCells(e, ids, reps);
    out[variant] = { cells, lora8_unmerged_vs_none: cells.lora8_unmerged.decode_tps / cells.none.decode_tps, lora1_vs_none: cells.lora1.decode_tps / cells.none.decode_tps };
    console.log(variant, JSON.stringify(out[variant]));
    await e.unload();
  }
  return { shape: SMOLLM2_135M, adapters: { count: 8, rank: 8, targets: 'q,k,v,o,gate,up,down' }, ...out };
}

if (process.argv[1]?.endsWith("lora-scale.ts")) { // run as a script, not when imported (gpu-hw bundles it)
  const hardware = process.env.CRAYON_NODE_GPU === 'hardware';
  const gpu = hardware ? (await (await import('../src/lib/gpu/node-gpu')).nodeGpu()).device : undefined;
  const r = await loraScale(hardware ? ['webgpu', 'webgpu_split', 'cpu'] : ['cpu'], Number(process.env.REPS ?? 2), gpu);
  console.log('wrote', writeResult('lora-scale', r, process.env.OUT ?? 'bench/results'));
  process.exit(0);
}
