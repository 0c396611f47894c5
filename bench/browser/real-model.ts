// Runs in a Chromium page (served by Vite from the repo), for e2e/real-parity.e2e.ts
// and bench/real-model.ts: our engine on the real model's GGUF, on CPU or WebGPU,
// its next-token logits for PyTorch's reference prompts, and how long the load took.
import { CrayonEngine } from '../../src/lib/engine/engine';
import { loadCheckpoint } from '../../src/lib/engine/loader';
import { logitsMaxAbs, referenceRows, type ParityReference } from '../real-parity';

export interface PageParity {
  backend: string;
  /** Per reference prompt: max |ours - PyTorch's exact-weights logits|. */
  perPrompt: number[];
  /** GGUF bytes already in memory → engine ready (parse, dequantize, and for WebGPU the upload). */
  loadMs: number;
  weightBytes: number | undefined;
  fileBytes: number;
  adapter: string | null;
}

async function get(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res;
}

/** `base`: the real model's cache folder as served to the page, ending in '/'; `gguf`: the file's name in it. */
export async function parity(base: string, gguf: string, backend: 'cpu' | 'webgpu'): Promise<PageParity> {
  const ref = (await (await get(`${base}reference/parity.json`)).json()) as ParityReference;
  const rows = referenceRows(new Uint8Array(await (await get(`${base}reference/${ref.logits.exact}`)).arrayBuffer()), ref, ref.logits.exact);
  const bytes = new Uint8Array(await (await get(base + gguf)).arrayBuffer());
  let gpu: GPUDevice | undefined;
  let adapterName: string | null = null;
  if (backend === 'webgpu') {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) throw new Error('No WebGPU adapter in this page (is --enable-unsafe-webgpu set?)');
    adapterName = `${adapter.info.vendor} ${adapter.info.architecture}`.trim();
    // The same limits as the app's engine worker asks for: the adapter's largest buffers.
    gpu = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
  }
  const t0 = performance.now();
  const ckpt = await loadCheckpoint(async (name) => (name === gguf ? bytes : null), { gguf });
  const engine = await CrayonEngine.create(ckpt, { backend, gpu });
  const loadMs = performance.now() - t0;
  const perPrompt: number[] = [];
  for (let i = 0; i < ref.prompts.length; i++) perPrompt.push(logitsMaxAbs(await engine.logitsFor(ref.prompts[i].ids), rows[i]));
  const info = engine.info();
  await engine.unload();
  gpu?.destroy();
  return { backend: info.backend, perPrompt, loadMs, weightBytes: info.weightBytes, fileBytes: bytes.byteLength, adapter: adapterName };
}
