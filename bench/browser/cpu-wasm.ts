// Runs in the benchmark's Chromium page (bench/cpu-wasm.ts): starts the race of the CPU kernels in a
// module worker, as the app's engine runs, and hands back its result.
import type { Race } from '../cpu-wasm-cells';

export type WorkerRace = Race & { cross_origin_isolated: boolean; user_agent: string; wasm_memory_bytes: number };

export function raceInWorker(base: string, gguf: string, rounds: number, decodeTokens: number, contextLength: number): Promise<WorkerRace | { error: string }> {
  const worker = new Worker(new URL('./cpu-wasm.worker.ts', import.meta.url), { type: 'module' });
  return new Promise((resolve) => {
    worker.onmessage = (ev: MessageEvent<{ log?: string; result?: WorkerRace; error?: string }>) => {
      if (ev.data.log) console.log(ev.data.log);
      else {
        worker.terminate();
        resolve(ev.data.result ?? { error: ev.data.error ?? 'no result' });
      }
    };
    worker.onerror = (ev) => {
      worker.terminate();
      resolve({ error: ev.message });
    };
    worker.postMessage({ base, gguf, rounds, decodeTokens, contextLength });
  });
}
