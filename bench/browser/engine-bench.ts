// Runs in the benchmark's browser page (served by Vite from the repo): our
// engine in a worker on CPU and on WebGPU (weights in f32, and in f16), and the peer, llama.cpp's WASM
// build through @wllama/wllama (CPU; 2 threads as the issue asks, and 1), on the same model.
import { Wllama } from '@wllama/wllama';
import wllamaWasm from '@wllama/wllama/esm/wasm/wllama.wasm?url';
import { WorkerRuntime } from '../../src/lib/runtimes/worker-runtime';
import { allCells, DECODE_TOKENS, PROMPT, type Cell } from '../engine-cells';
import { median } from '../stats';

async function adapterFiles(worldPath: string, id: string) {
  const dir = `${worldPath}/device-pool/${id}`;
  return { config: await (await fetch(`${dir}/adapter_config.json`)).json(), weights: new Uint8Array(await (await fetch(`${dir}/adapter_model.safetensors`)).arrayBuffer()) };
}

export async function ours(worldPath: string, backend: 'cpu' | 'webgpu', reps: number, gpuWeights: 'f32' | 'f16' = 'f32'): Promise<{ backend: string; weightFormat?: string; cells: Record<string, Cell> }> {
  const worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module' });
  const rt = new WorkerRuntime(worker);
  const info = await rt.load({ kind: 'url', base: `${location.origin}${worldPath}/device/` }, { backend, gpuWeights });
  const pool = await (await fetch(`${worldPath}/device-pool/pool.json`)).json();
  const ids: string[] = pool.adapters.map((a: { id: string }) => a.id);
  for (const id of ids) await rt.loadAdapter(id, await adapterFiles(worldPath, id));
  const cells = await allCells(rt, ids, reps);
  worker.terminate();
  return { backend: info.backend, weightFormat: info.weightFormat, cells };
}

export async function wllama(_worldPath: string, reps: number, threads = 2): Promise<Cell & { threads: number }> {
  const w = new Wllama({ default: wllamaWasm }, { suppressNativeLog: true });
  const blob = await (await fetch('/bench/tmp/device.gguf')).blob(); // exported by bench/engine.ts
  await w.loadModel([blob], { n_ctx: 256, n_threads: threads, n_gpu_layers: 0 });
  const runs: Cell[] = [];
  for (let i = 0; i <= reps; i++) {
    const r = await w.createCompletion({ prompt: PROMPT, max_tokens: DECODE_TOKENS, temperature: 0, ignore_eos: true } as never);
    const t = (r as { timings?: { prompt_per_second: number; predicted_per_second: number } }).timings;
    if (!t) throw new Error('wllama returned no timings');
    if (i > 0) runs.push({ prefill_tps: t.prompt_per_second, decode_tps: t.predicted_per_second });
  }
  await w.exit();
  return { prefill_tps: median(runs.map((r) => r.prefill_tps)), decode_tps: median(runs.map((r) => r.decode_tps)), threads };
}
