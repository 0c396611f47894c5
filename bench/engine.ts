// `npm run bench:engine`: prefill and decode tokens/s of the reference device
// model with 0, 1 and 8 blended adapters (unmerged) and merged, on CPU in
// Node, and in headless Chromium in a worker on CPU and on WebGPU, beside the
// peer in the same browser and run: the same model's GGUF in @wllama/wllama
// (llama.cpp WASM, 2 threads). Also the cost of switching blends, and WebGPU
// with the weights stored in f16 beside f32.
// Set CRAYON_NODE_GPU=hardware on a machine with a GPU to add WebGPU in Node.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { createServer } from 'vite';
import { parseConfig } from '../src/lib/engine/config';
import { adapterMacs, decodeMacs } from '../src/lib/engine/cost';
import { CrayonEngine } from '../src/lib/engine/engine';
import { parseAdapter } from '../src/lib/engine/lora';
import { loadCheckpoint } from '../src/lib/engine/loader';
import { fsSource, readAdapterDir } from '../src/lib/engine/testing/fs-source';
import { worldDir } from '../training/world-dir';
import { launchChromium } from '../e2e/chromium';
import { allCells, blends, DECODE_TOKENS, PROMPT, type Cell } from './engine-cells';
import { median, writeResult } from './results';

const REPS = Number(process.env.REPS ?? 5);
const world = worldDir();
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: { id: string }[] };
const ids = pool.adapters.map((a) => a.id);

async function nodeEngine(backend: 'cpu' | 'webgpu') {
  const gpu = backend === 'webgpu' ? (await (await import('../src/lib/gpu/node-gpu')).nodeGpu()).device : undefined;
  const e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend, gpu });
  for (const id of ids) await e.loadAdapter(id, readAdapterDir(`${world}/device-pool/${id}`));
  return e;
}

/** Median time of switching between two 8-adapter delta blends. */
function blendSwitchMs(e: CrayonEngine): number {
  const a = blends(ids).lora8_unmerged!;
  const b = { mode: 'delta' as const, weights: Object.fromEntries(ids.map((id, i) => [id, 1 - i / ids.length])) };
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    e.setBlendSync(i % 2 ? a : b);
    times.push(performance.now() - t);
  }
  e.setBlendSync(null);
  return median(times);
}

/** Median time of switching between two 8-adapter merged blends: the one before is taken out, the new one baked in. */
function mergedSwitchMs(e: CrayonEngine): number {
  const times: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t = performance.now();
    e.setBlendSync({ mode: 'merged', weights: Object.fromEntries(ids.map((id, j) => [id, ((i + j) % ids.length + 1) / ids.length])) });
    times.push(performance.now() - t);
  }
  e.setBlendSync(null);
  return median(times);
}

async function browserCells() {
  const server = await createServer({ appType: 'mpa', server: { host: '127.0.0.1', port: 0, hmr: false }, logLevel: 'warn', optimizeDeps: { noDiscovery: true, include: [] } });
  await server.listen();
  const url = server.resolvedUrls!.local[0];
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => m.type() === 'error' && console.error('[page]', m.text()));
    await page.goto(new URL('/e2e/blank.html', url).toString());
    await page.waitForFunction(() => typeof load === 'function');
    const worldPath = '/' + relative(process.cwd(), world);
    const isolated = await page.evaluate(() => crossOriginIsolated);
    const run = (expr: string) => page.evaluate(async ([e, wp, reps]) => {
      const m = await load('/bench/browser/engine-bench.ts');
      if (e === 'wllama' || e === 'wllama1') return m.wllama(wp, reps, e === 'wllama' ? 2 : 1);
      return e === 'webgpu-f16' ? m.ours(wp, 'webgpu', reps, 'f16') : m.ours(wp, e, reps);
    }, [expr, worldPath, REPS] as const);
    const cpu = await run('cpu');
    const webgpu = await run('webgpu');
    // The same WebGPU path with the weights stored as f16 (rounded from the f32 checkpoint): half the memory.
    const webgpuF16 = await run('webgpu-f16');
    const peer = await run('wllama');
    // llama.cpp natively is much slower on 2 threads than on 1 on this 2-core machine (see the server's
    // contexts); the peer at 1 thread too, so the ratio isn't flattered by a badly threaded peer.
    const peer1 = await run('wllama1');
    return { isolated, cpu, webgpu, webgpuF16, peer, peer1 };
  } finally {
    await browser.close();
    await server.close();
  }
}

const cpuNode = await nodeEngine('cpu');
const cpuNodeCells = await allCells(cpuNode, ids, REPS);
const switchMs = blendSwitchMs(cpuNode);
const mergedMs = mergedSwitchMs(cpuNode);
let gpuNode: { cells: Record<string, Cell>; switchMs: number } | null = null;
if (process.env.CRAYON_NODE_GPU === 'hardware') {
  const e = await nodeEngine('webgpu');
  gpuNode = { cells: await allCells(e, ids, REPS), switchMs: blendSwitchMs(e) };
}
// The peer needs the device model as GGUF (not committed, for size): export it with the world's own exporter.
mkdirSync('bench/tmp', { recursive: true });
execFileSync('/usr/bin/python3', ['training/gguf.py', `${world}/device`, 'bench/tmp/device.gguf'], { stdio: 'inherit' });
const b = await browserCells();
const best = Math.max(b.cpu.cells.none.decode_tps, b.webgpu.cells.none.decode_tps);
// The LoRA overhead is judged on the backend people get: the fastest in the browser.
const fastest = b.cpu.cells.none.decode_tps >= b.webgpu.cells.none.decode_tps ? b.cpu : b.webgpu;
// The LoRA overhead in arithmetic: multiply-adds per decoded token at the measured decode's mean position, with
// no adapter and with the 8-adapter delta blend. If decoding were nothing but multiply-adds at one speed, lora8 over
// none would be base / (base + lora8); per-token work that adapters don't grow (norms, activations, dispatch) lifts
// a measured ratio above that, and LoRA's products running slower per multiply-add than the base's pull it below.
const cfg = parseConfig(JSON.parse(readFileSync(`${world}/device/config.json`, 'utf8')));
const meanPosition = (await cpuNode.generate({ prompt: PROMPT, maxTokens: 1, temperature: 0 })).promptTokens + DECODE_TOKENS / 2;
const baseMacs = decodeMacs(cfg, meanPosition);
const lora8Macs = ids.reduce((n, id) => {
  const files = readAdapterDir(`${world}/device-pool/${id}`);
  return n + adapterMacs(parseAdapter(id, files.config, files.weights, cfg));
}, 0);
const result = {
  model: { params: cpuNode.info().params, adapters: ids.length },
  decode_tps: { cpu_node: cpuNodeCells.none.decode_tps, cpu_worker: b.cpu.cells.none.decode_tps, webgpu_worker: b.webgpu.cells.none.decode_tps, wllama: b.peer.decode_tps },
  prefill_tps: { cpu_node: cpuNodeCells.none.prefill_tps, cpu_worker: b.cpu.cells.none.prefill_tps, webgpu_worker: b.webgpu.cells.none.prefill_tps, wllama: b.peer.prefill_tps },
  ratio_best_vs_wllama: best / b.peer.decode_tps,
  ratio_best_vs_wllama_either_threads: best / Math.max(b.peer.decode_tps, b.peer1.decode_tps),
  lora8_unmerged_vs_none: fastest.cells.lora8_unmerged.decode_tps / fastest.cells.none.decode_tps,
  fastest_browser_backend: fastest.backend,
  lora8_vs_none_arithmetic_only: baseMacs / (baseMacs + lora8Macs),
  arithmetic: { mean_decode_position: meanPosition, base_macs_per_token: baseMacs, lora8_macs_per_token: lora8Macs },
  lora8_unmerged_vs_none_by_backend: { cpu_node: cpuNodeCells.lora8_unmerged.decode_tps / cpuNodeCells.none.decode_tps, cpu_worker: b.cpu.cells.lora8_unmerged.decode_tps / b.cpu.cells.none.decode_tps, webgpu_worker: b.webgpu.cells.lora8_unmerged.decode_tps / b.webgpu.cells.none.decode_tps },
  blend_switch_ms: switchMs,
  // Merged mode's cost of a new blend, on CPU in Node (WebGPU merges the same way, then uploads the weights).
  merged_blend_switch_ms: mergedMs,
  webgpu_f16_weights_vs_f32_decode: b.webgpuF16.cells.none.decode_tps / b.webgpu.cells.none.decode_tps,
  cells: { cpu_node: cpuNodeCells, cpu_worker: b.cpu.cells, webgpu_worker: b.webgpu.cells, webgpu_worker_f16_weights: b.webgpuF16.cells, wllama: b.peer, wllama_1thread: b.peer1 },
  webgpu_node_hardware: gpuNode,
  browser: { crossOriginIsolated: b.isolated, webgpu_backend_used: b.webgpu.backend, webgpu_f16_weight_format_used: b.webgpuF16.weightFormat },
  method: `median of ${REPS} rounds after a warm-up round, the four blends interleaved within each round; prompt ${'~'}70 tokens, ${64} decoded tokens with EOS ignored; wllama: llama.cpp's own timings, n_threads 2 (and 1, beside it), n_gpu_layers 0`,
};
console.log(JSON.stringify(result, null, 2));
console.log('wrote', writeResult('engine', result));
process.exit(0);
