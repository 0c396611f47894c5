// `npm run bench:real`: the real model (SmolLM2-135M-Instruct, the Q4_1 GGUF of
// `npm run real-model`) in our engine. Next-token logits against PyTorch's on the
// GGUF's exactly dequantized weights (CPU and WebGPU, in Node and in Chromium),
// 64 greedy tokens against llama.cpp on the same GGUF and the same token ids, the
// load time and the memory the weights take.
import { readFileSync } from 'node:fs';
import { createServer } from 'vite';
import { CrayonEngine } from '../src/lib/engine/engine';
import { loadCheckpoint } from '../src/lib/engine/loader';
import { REAL_MODEL, realModelDir } from '../src/lib/engine/testing/real-model';
import { launchChromium } from '../e2e/chromium';
import type { PageParity } from './browser/real-model';
import { divergence } from './greedy-agreement';
import { llamaCppGreedy } from './llamacpp-greedy';
import { packageVersion } from './package-version';
import { logitsMaxAbs, referenceRows, servedPath, type ParityReference } from './real-parity';
import { median, writeResult } from './results';

const GREEDY_TOKENS = 64;
const LOAD_REPS = 3;
const dir = realModelDir();
const gguf = REAL_MODEL.gguf.file;
const ref = JSON.parse(readFileSync(`${dir}/reference/parity.json`, 'utf8')) as ParityReference;
const exact = referenceRows(new Uint8Array(readFileSync(`${dir}/reference/${ref.logits.exact}`)), ref, ref.logits.exact);
const f16 = referenceRows(new Uint8Array(readFileSync(`${dir}/reference/${ref.logits.f16}`)), ref, ref.logits.f16);
const fileBytes = new Uint8Array(readFileSync(`${dir}/${gguf}`));
const prompts = ref.prompts.map((p) => p.ids);
const maxOf = (xs: number[]) => Math.max(...xs);

/** GGUF bytes already in memory → engine ready: parse, dequantize (widen to f32), and the backend's setup. */
async function loadEngine(backend: 'cpu' | 'webgpu', gpu?: GPUDevice): Promise<{ engine: CrayonEngine; ms: number }> {
  const t0 = performance.now();
  const ckpt = await loadCheckpoint(async (name) => (name === gguf ? fileBytes : null), { gguf });
  const engine = await CrayonEngine.create(ckpt, { backend, gpu });
  return { engine, ms: performance.now() - t0 };
}

async function perPrompt(engine: CrayonEngine, rows: Float32Array[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < prompts.length; i++) out.push(logitsMaxAbs(await engine.logitsFor(prompts[i]), rows[i]));
  return out;
}

async function chromiumParity(): Promise<{ cpu: PageParity; webgpu: PageParity; version: string }> {
  const server = await createServer({ appType: 'mpa', server: { host: '127.0.0.1', port: 0, hmr: false }, logLevel: 'warn', optimizeDeps: { noDiscovery: true, include: [] } });
  await server.listen();
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => m.type() === 'error' && console.error('[page]', m.text()));
    await page.goto(new URL('/e2e/blank.html', server.resolvedUrls!.local[0]).toString());
    await page.waitForFunction(() => typeof load === 'function');
    const run = (backend: 'cpu' | 'webgpu') =>
      page.evaluate(async ([base, file, b]) => (await load('/bench/browser/real-model.ts')).parity(base, file, b) as Promise<PageParity>, [servedPath(dir, process.cwd()), gguf, backend] as const);
    const cpu = await run('cpu');
    console.log('chromium cpu', cpu);
    const webgpu = await run('webgpu');
    console.log('chromium webgpu', webgpu);
    return { cpu, webgpu, version: browser.version() };
  } finally {
    await browser.close();
    await server.close();
  }
}

// llama.cpp first: its greedy tokens are what our engine's divergences are found against.
const peer = await llamaCppGreedy(`${dir}/${gguf}`, prompts, GREEDY_TOKENS);
console.log('llama.cpp greedy done');

// CPU in Node: load time (median of LOAD_REPS), parity, greedy tokens and the first divergences.
const loadRuns: number[] = [];
let cpu!: CrayonEngine;
for (let r = 0; r < LOAD_REPS; r++) {
  await cpu?.unload();
  const l = await loadEngine('cpu');
  cpu = l.engine;
  loadRuns.push(l.ms);
}
const cpuInfo = cpu.info();
const cpuNode = await perPrompt(cpu, exact);
const cpuNodeVsF16 = await perPrompt(cpu, f16);
console.log('cpu node', cpuNode);
const greedy = [];
for (let i = 0; i < prompts.length; i++) {
  const t0 = performance.now();
  const ours = await cpu.greedyIds(prompts[i], GREEDY_TOKENS);
  const decodeMs = performance.now() - t0;
  const theirs = peer.tokens[i];
  const d = await divergence(ours, { tokens: theirs, top: peer.top[i], decode: peer.detokenize }, (k) => cpu.logitsFor([...prompts[i], ...ours.slice(0, k)]), (ids) => cpu.tokenizer.decode(ids));
  greedy.push({
    prompt: ref.prompts[i].messages.at(-1)?.content,
    turns: ref.prompts[i].messages.length,
    prompt_tokens: prompts[i].length,
    ...d,
    shared_text: cpu.tokenizer.decode(ours.slice(0, d.first_divergence ?? GREEDY_TOKENS)),
    ours_text: cpu.tokenizer.decode(ours),
    llamacpp_text: peer.detokenize(theirs),
    ours_tokens: ours,
    llamacpp_tokens: theirs,
    ours_ms: decodeMs, // our CPU engine in Node: prefill and the 64 greedy tokens
  });
  console.log('greedy', i, d);
}
await cpu.unload();
await peer.dispose();

// WebGPU in Node (SwiftShader unless CRAYON_NODE_GPU=hardware).
const { nodeGpu } = await import('../src/lib/gpu/node-gpu');
const nodeGpuHandle = await nodeGpu();
const gpuLoad = await loadEngine('webgpu', nodeGpuHandle.device);
const gpuInfo = gpuLoad.engine.info();
const webgpuNode = await perPrompt(gpuLoad.engine, exact);
console.log('webgpu node', webgpuNode);
await gpuLoad.engine.unload();

const chromium = await chromiumParity();
const { vocab: _v, prompts: _p, logits: _l, ...referenceMeta } = ref as ParityReference & Record<string, unknown>;
// `npm run real-model` records the versions of the tools that made the references in READY (JSON).
const ready = JSON.parse(readFileSync(`${dir}/READY`, 'utf8') || 'null') as { versions?: Record<string, string> } | null;

const result = {
  model: { id: REAL_MODEL.id, gguf, package: `${REAL_MODEL.package.name}==${REAL_MODEL.package.version}`, params: cpuInfo.params, vocab: ref.vocab, prompts: prompts.length },
  logits_bound: 1e-3,
  logits_max_abs: { cpu_node: maxOf(cpuNode), webgpu_node: maxOf(webgpuNode), cpu_chromium: maxOf(chromium.cpu.perPrompt), webgpu_chromium: maxOf(chromium.webgpu.perPrompt) },
  logits_max_abs_per_prompt: { cpu_node: cpuNode, webgpu_node: webgpuNode, cpu_chromium: chromium.cpu.perPrompt, webgpu_chromium: chromium.webgpu.perPrompt },
  // Context for the numbers above: the same CPU logits against PyTorch on the f16-rounded weights (the converted HF folder).
  logits_max_abs_vs_f16_weights_reference: { cpu_node: maxOf(cpuNodeVsF16), per_prompt: cpuNodeVsF16 },
  greedy_agreement_llamacpp: {
    definition: `first_divergence / ${GREEDY_TOKENS}: the share of the ${GREEDY_TOKENS} greedy positions before the two sides first choose different tokens (after that they continue from different contexts, so later positions are not compared); 1 when all agree`,
    tokens: GREEDY_TOKENS,
    per_prompt: greedy.map((g) => g.agreement),
    mean: greedy.reduce((s, g) => s + g.agreement, 0) / greedy.length,
    prompts: greedy,
  },
  load_ms: { cpu_node: median(loadRuns), cpu_node_runs: loadRuns, webgpu_node: gpuLoad.ms, cpu_chromium: chromium.cpu.loadMs, webgpu_chromium: chromium.webgpu.loadMs },
  weight_bytes: cpuInfo.weightBytes,
  weight_bytes_by_backend: { cpu_node: cpuInfo.weightBytes, webgpu_node: gpuInfo.weightBytes, cpu_chromium: chromium.cpu.weightBytes, webgpu_chromium: chromium.webgpu.weightBytes },
  weight_format: { cpu: cpuInfo.weightFormat, webgpu: gpuInfo.weightFormat },
  file_bytes: fileBytes.byteLength,
  // The weight tensors' own bytes in the file (the rest is metadata: vocabulary, merges, template).
  file_weight_bytes: cpuInfo.fileBytes,
  versions: { node: process.version, chromium: chromium.version, webgpu_package: packageVersion('webgpu'), webgpu_adapter_chromium: chromium.webgpu.adapter, llamacpp: peer.versions, reference: { ...referenceMeta, tools: ready?.versions ?? null } },
  method: `logits: next-token logits after each reference prompt's full ids (a fresh prefill each), max |ours - PyTorch's| over the ${ref.vocab.toLocaleString('en')}-token vocabulary; PyTorch: transformers' LlamaForCausalLM in f32 on the weights exactly dequantized from the same GGUF. Greedy: our CPU engine in Node and llama.cpp (node-llama-cpp, CPU, ${peer.versions.threads} thread) from the same ids, no BOS added, no repetition penalty, end-of-generation tokens not stopping either side. load_ms: the GGUF's bytes already in memory to an engine ready to run (CPU Node: median of ${LOAD_REPS}; the others once). WebGPU is SwiftShader in Node and in Chromium. 2 shared cores: times are noisy.`,
};
console.log(JSON.stringify({ logits_max_abs: result.logits_max_abs, greedy: result.greedy_agreement_llamacpp.per_prompt, load_ms: result.load_ms }, null, 2));
console.log('wrote', writeResult('real-model', result));
process.exit(0); // Dawn keeps Node alive
