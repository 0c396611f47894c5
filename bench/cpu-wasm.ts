// `npm run bench:cpu-wasm`: the CPU engine's WebAssembly SIMD128 kernels (src/lib/engine/backends/wasm/)
// against its TypeScript reference (ops.ts's matvecJs), on the real model (SmolLM2-135M-Instruct, its
// Q4_1 GGUF widened to f32; `npm run real-model` fetches it), single-threaded:
// - kernels: one token's mat-vecs (30 layers x 7 projections + the 49,152 x 576 logits) on the real
//   weights, beside a plain streaming read of the same bytes in wasm (this machine's bandwidth now);
// - the engine in Node: prefill (token by token, as the engine does) and decode tok/s, rounds interleaved;
// - the same race in Chromium, in a module worker (bench/browser/cpu-wasm.worker.ts) unless --no-browser;
// - next-token logits of both paths on PyTorch's reference prompts, and memory (peak RSS while the wasm
//   engine loads, its wasm memory against the weights' bytes).
// Writes bench/results/cpu-wasm.json (or $OUT/cpu-wasm.json). ROUNDS (default 5) counted rounds after a warm-up.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { createServer } from 'vite';
import wabtInit from 'wabt';
import { launchChromium } from '../e2e/chromium';
import { loadCheckpoint } from '../src/lib/engine/loader';
import type { Linear } from '../src/lib/engine/model';
import { matvec } from '../src/lib/engine/ops';
import { arenaOf } from '../src/lib/engine/backends/wasm/arena';
import { maxAbsDiff } from '../src/lib/engine/testing/compare';
import { fsSource } from '../src/lib/engine/testing/fs-source';
import { REAL_MODEL, realModelDir } from '../src/lib/engine/testing/real-model';
import { enginesFor, KERNELS, race, type Kernels, type Race, type Spread } from './cpu-wasm-cells';
import { PROMPT } from './engine-cells';
import { writeResult } from './results';
import { median } from './stats';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const DECODE_TOKENS = 32;
const CONTEXT = 256;
const dir = realModelDir();
const log = (s: string) => console.log(s);

/** Sums `bytes` of a memory from address 0, four vectors per step: how fast one core streams it. */
const STREAM_WAT = `(module (import "env" "memory" (memory 1))
  (func (export "sum") (param $p i32) (param $end i32) (result f32) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (loop $l
      (local.set $a (f32x4.add (local.get $a) (v128.load (local.get $p))))
      (local.set $b (f32x4.add (local.get $b) (v128.load offset=16 (local.get $p))))
      (local.set $c (f32x4.add (local.get $c) (v128.load offset=32 (local.get $p))))
      (local.set $d (f32x4.add (local.get $d) (v128.load offset=48 (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 64)))
      (br_if $l (i32.lt_u (local.get $p) (local.get $end))))
    (f32x4.extract_lane 0 (f32x4.add (f32x4.add (local.get $a) (local.get $b)) (f32x4.add (local.get $c) (local.get $d))))))`;

const spread = (xs: number[]): Spread => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** One token's mat-vecs on each engine's weights, and a streaming read of the wasm memory, interleaved. */
async function kernelPasses(engines: Awaited<ReturnType<typeof enginesFor>>) {
  const mats = (k: Kernels) => {
    const w = engines[k].weights;
    const cfg = engines[k].cfg;
    const list: { w: Float32Array; rows: number; n: number }[] = w.layers.flatMap((L) => Object.values(L.proj).map((p: Linear) => ({ w: p.w, rows: p.out, n: p.inp })));
    list.push({ w: w.head, rows: cfg.vocabSize, n: cfg.dim });
    return list;
  };
  const lists = { js: mats('js'), wasm: mats('wasm') };
  const bytes = lists.wasm.reduce((s, m) => s + m.rows * m.n * 4, 0);
  const x = Float32Array.from({ length: 1536 }, (_, i) => Math.sin(i));
  const y = new Float32Array(49152);
  const pass = (k: Kernels) => () => {
    for (const m of lists[k]) matvec(y, m.w, x, m.rows, m.n);
  };
  const memory = arenaOf(engines.wasm.weights.head)!.memory;
  const wabt = await wabtInit();
  const streamBytes = wabt.parseWat('stream.wat', STREAM_WAT, { simd: true }).toBinary({}).buffer;
  const sum = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(streamBytes)), { env: { memory } }).exports.sum as (p: number, end: number) => number;
  const end = Math.floor(bytes / 64) * 64; // the first `bytes` of the memory: the weights, laid out first
  const fns: Record<string, () => void> = { js: pass('js'), wasm: pass('wasm'), stream: () => sum(0, end) };
  const ms: Record<string, number[]> = { js: [], wasm: [], stream: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const k of Object.keys(fns)) {
      const t = performance.now();
      for (let i = 0; i < 3; i++) fns[k]();
      if (round > 0) ms[k].push((performance.now() - t) / 3);
    }
  }
  const gbps = (k: string) => spread(ms[k].map((t) => bytes / t / 1e6));
  const paired = spread(ms.wasm.map((t, i) => ms.js[i] / t));
  log(`kernels: js ${median(ms.js).toFixed(1)} ms/pass, wasm ${median(ms.wasm).toFixed(1)} ms/pass (x${paired.median.toFixed(2)}), streaming read ${median(ms.stream).toFixed(1)} ms`);
  return { bytes_per_pass: bytes, ms_per_pass: { js: spread(ms.js), wasm: spread(ms.wasm), stream: spread(ms.stream) }, gb_per_s: { js: gbps('js'), wasm: gbps('wasm'), stream: gbps('stream') }, wasm_vs_js: paired, wasm_fraction_of_stream: median(ms.stream) / median(ms.wasm) };
}

async function browserRace(): Promise<(Race & { cross_origin_isolated: boolean; user_agent: string; wasm_memory_bytes: number }) | { error: string }> {
  const server = await createServer({ appType: 'mpa', server: { host: '127.0.0.1', port: 0, hmr: false }, logLevel: 'warn', optimizeDeps: { noDiscovery: true, include: [] } });
  await server.listen();
  const url = server.resolvedUrls!.local[0];
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => console.log('[page]', m.text()));
    await page.goto(new URL('/e2e/blank.html', url).toString());
    await page.waitForFunction(() => typeof load === 'function');
    const base = '/' + relative(process.cwd(), dir) + '/';
    return await page.evaluate(async ([b, gguf, rounds, decode, ctx]) => {
      const m = await load('/bench/browser/cpu-wasm.ts');
      return m.raceInWorker(b, gguf, rounds, decode, ctx);
    }, [base, REAL_MODEL.gguf.file, ROUNDS, DECODE_TOKENS, CONTEXT] as const);
  } finally {
    await browser.close();
    await server.close();
  }
}

const ckpt = await loadCheckpoint(fsSource(dir), { gguf: REAL_MODEL.gguf.file });
const rssBefore = process.resourceUsage().maxRSS * 1024;
let peakAfterWasm = 0; // the process's peak RSS once the wasm engine has loaded, before the js one
const engines = await enginesFor(ckpt, CONTEXT, () => (peakAfterWasm = process.resourceUsage().maxRSS * 1024));
const wasmInfo = engines.wasm.info();
const arena = arenaOf(engines.wasm.weights.head)!;
log(`loaded: weights ${(wasmInfo.weightBytes! / 1e6).toFixed(1)} MB, wasm memory ${(arena.bytes / 1e6).toFixed(1)} MB, peak RSS ${(rssBefore / 1e6).toFixed(0)} MB before, ${(peakAfterWasm / 1e6).toFixed(0)} MB after the wasm engine`);

const parity = JSON.parse(readFileSync(`${dir}/reference/parity.json`, 'utf8')) as { prompts: { ids: number[] }[] };
const logitsDiff: number[] = [];
for (const p of parity.prompts.slice(0, 2)) logitsDiff.push(maxAbsDiff(await engines.wasm.logitsFor(p.ids), await engines.js.logitsFor(p.ids)));
log(`next-token logits, max |wasm - js| on reference prompts 0-1: ${logitsDiff.map((d) => d.toExponential(2)).join(', ')}`);

const kernels = await kernelPasses(engines);
const node = await race(engines, PROMPT, DECODE_TOKENS, ROUNDS, log);
log(`node: decode x${node.speedup.decode.median.toFixed(2)} (${node.speedup.decode.min.toFixed(2)}-${node.speedup.decode.max.toFixed(2)}), prefill x${node.speedup.prefill.median.toFixed(2)}`);
for (const k of KERNELS) await engines[k].unload();

const chromium = process.argv.includes('--no-browser') ? null : await browserRace();
if (chromium && 'speedup' in chromium) log(`chromium worker: decode x${chromium.speedup.decode.median.toFixed(2)}, prefill x${chromium.speedup.prefill.median.toFixed(2)}`);

const cfg = ckpt.config;
const result = {
  model: { name: 'SmolLM2-135M-Instruct', file: REAL_MODEL.gguf.file, dim: cfg.dim, hidden: cfg.hiddenDim, layers: cfg.nLayers, heads: cfg.nHeads, kv_heads: cfg.nKvHeads, vocab: cfg.vocabSize, weights_as: 'f32 (Q4_1 widened at load)' },
  shapes: { projections_per_layer: { q: [cfg.nHeads * cfg.headDim, cfg.dim], k: [cfg.nKvHeads * cfg.headDim, cfg.dim], v: [cfg.nKvHeads * cfg.headDim, cfg.dim], o: [cfg.dim, cfg.nHeads * cfg.headDim], gate: [cfg.hiddenDim, cfg.dim], up: [cfg.hiddenDim, cfg.dim], down: [cfg.dim, cfg.hiddenDim] }, logits: [cfg.vocabSize, cfg.dim] },
  threads: 1,
  rounds: ROUNDS,
  kernels,
  node,
  chromium_worker: chromium,
  logits_max_abs_wasm_vs_js: logitsDiff,
  memory: { weight_bytes: wasmInfo.weightBytes, file_bytes: wasmInfo.fileBytes, wasm_memory_bytes: arena.bytes, wasm_memory_vs_weights: arena.bytes / wasmInfo.weightBytes!, peak_rss_before_load: rssBefore, peak_rss_after_wasm_engine: peakAfterWasm },
};
console.log('wrote', writeResult('cpu-wasm', result, process.env.OUT ?? 'bench/results'));
process.exit(0);
