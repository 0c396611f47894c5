// The CPU kernels' race, shared by Node (bench/cpu-wasm.ts) and Chromium's worker
// (bench/browser/cpu-wasm.worker.ts): the same checkpoint on the TypeScript kernels and on the
// WebAssembly SIMD ones, generating the same greedy tokens in alternating order round after round
// (the machine is shared: drift hits both alike, and each round gives a paired ratio).
import { CrayonEngine, type Checkpoint } from '../src/lib/engine/engine';
import { median } from './stats';

export type Kernels = 'js' | 'wasm';
export const KERNELS: Kernels[] = ['js', 'wasm'];

export interface Run {
  prefill_tps: number;
  decode_tps: number;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface Race {
  prompt_tokens: number;
  decode_tokens: number;
  rounds: number;
  /** Per kernel: prefill and decode tok/s over the counted rounds (round 0 warms up). */
  js: { prefill_tps: Spread; decode_tps: Spread; runs: Run[] };
  wasm: { prefill_tps: Spread; decode_tps: Spread; runs: Run[] };
  /** wasm / js within each round. */
  speedup: { prefill: Spread; decode: Spread };
  /** Whether both generated the same greedy tokens every round. */
  same_tokens: boolean;
}

const spread = (xs: number[]): Spread => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** Both engines on `ckpt`, the wasm one first: `afterWasm` sees memory before the js one loads. */
export async function enginesFor(ckpt: Checkpoint, contextLength: number, afterWasm: () => void = () => {}): Promise<Record<Kernels, CrayonEngine>> {
  const wasm = await CrayonEngine.create(ckpt, { backend: 'cpu', contextLength, cpuKernels: 'wasm' });
  afterWasm();
  const js = await CrayonEngine.create(ckpt, { backend: 'cpu', contextLength, cpuKernels: 'js' });
  return { js, wasm };
}

export async function race(engines: Record<Kernels, CrayonEngine>, prompt: string, decodeTokens: number, rounds: number, log: (s: string) => void = () => {}): Promise<Race> {
  const runs: Record<Kernels, Run[]> = { js: [], wasm: [] };
  let same = true;
  let promptTokens = 0;
  for (let round = 0; round <= rounds; round++) {
    const tokens: Partial<Record<Kernels, number[]>> = {};
    for (const k of round % 2 ? [...KERNELS].reverse() : KERNELS) {
      const r = await engines[k].generate({ prompt, maxTokens: decodeTokens, temperature: 0, ignoreEos: true });
      const run = { prefill_tps: r.promptTokens / (r.timings.prefillMs / 1000), decode_tps: r.timings.decodeSteps / (r.timings.decodeMs / 1000) };
      tokens[k] = r.tokens;
      promptTokens = r.promptTokens;
      log(`round ${round}${round === 0 ? ' (warm-up)' : ''} ${k}: prefill ${run.prefill_tps.toFixed(2)} tok/s, decode ${run.decode_tps.toFixed(2)} tok/s`);
      if (round > 0) runs[k].push(run);
    }
    if (tokens.js!.join() !== tokens.wasm!.join()) same = false;
  }
  const ratio = (f: (r: Run) => number) => spread(runs.wasm.map((w, i) => f(w) / f(runs.js[i])));
  const side = (k: Kernels) => ({ prefill_tps: spread(runs[k].map((r) => r.prefill_tps)), decode_tps: spread(runs[k].map((r) => r.decode_tps)), runs: runs[k] });
  return {
    prompt_tokens: promptTokens,
    decode_tokens: decodeTokens,
    rounds,
    js: side('js'),
    wasm: side('wasm'),
    speedup: { prefill: ratio((r) => r.prefill_tps), decode: ratio((r) => r.decode_tps) },
    same_tokens: same,
  };
}
