// The CPU kernels' race in a Chromium module worker (bench/cpu-wasm.ts): the real model's GGUF fetched
// from the benchmark's Vite server, both engines loaded, rounds interleaved (cpu-wasm-cells.ts).
import { loadCheckpoint } from '../../src/lib/engine/loader';
import { arenaOf } from '../../src/lib/engine/backends/wasm/arena';
import { enginesFor, race } from '../cpu-wasm-cells';
import { PROMPT } from '../engine-cells';

interface Request {
  base: string;
  gguf: string;
  rounds: number;
  decodeTokens: number;
  contextLength: number;
}

self.onmessage = async (ev: MessageEvent<Request>) => {
  const { base, gguf, rounds, decodeTokens, contextLength } = ev.data;
  try {
    const bytes = new Uint8Array(await (await fetch(base + gguf)).arrayBuffer());
    const ckpt = await loadCheckpoint(async (name) => (name === gguf ? bytes : null), { gguf });
    const engines = await enginesFor(ckpt, contextLength);
    const r = await race(engines, PROMPT, decodeTokens, rounds, (log) => self.postMessage({ log }));
    const result = { ...r, cross_origin_isolated: self.crossOriginIsolated, user_agent: navigator.userAgent, wasm_memory_bytes: arenaOf(engines.wasm.weights.head)!.bytes };
    for (const e of Object.values(engines)) await e.unload();
    self.postMessage({ result });
  } catch (err) {
    self.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
