// The engine benchmark's cells, shared by Node and the browser: for one
// runtime, prefill and decode tokens/s with no adapter, one adapter, an
// 8-adapter unmerged blend, and the same blend merged, measured interleaved.
import type { Blend, Runtime } from '../src/lib/runtimes/types';
import { median } from './stats';

export interface Cell {
  prefill_tps: number;
  decode_tps: number;
}

export const PROMPT = 'The day was bright and the town was calm. Ada met Bram in Zorvia, and they walked 5 km to Pelk. A glim saw a cup near Rindo. '.repeat(2);
export const DECODE_TOKENS = 64;

export function blends(ids: string[]): Record<string, Blend | null> {
  const w = Object.fromEntries(ids.map((id, i) => [id, (i + 1) / ids.length]));
  return {
    none: null,
    lora1: { mode: 'delta', weights: { [ids[0]]: 1 } },
    lora8_unmerged: { mode: 'delta', weights: w },
    lora8_merged: { mode: 'merged', weights: w },
  };
}

/** One generation's prefill and decode speed under the runtime's current blend. */
async function once(rt: Runtime): Promise<Cell> {
  const r = await rt.generate({ prompt: PROMPT, maxTokens: DECODE_TOKENS, temperature: 0, ignoreEos: true });
  return { prefill_tps: r.promptTokens / (r.timings.prefillMs / 1000), decode_tps: r.timings.decodeSteps / (r.timings.decodeMs / 1000) };
}

const medianCell = (runs: Cell[]): Cell => ({ prefill_tps: median(runs.map((r) => r.prefill_tps)), decode_tps: median(runs.map((r) => r.decode_tps)) });

/**
 * Every cell's median over `reps` rounds, the cells interleaved within each round (none, lora1,
 * lora8, merged, none, ...) so that a shared machine's drift hits all of them alike and their
 * ratios stay fair; round 0 warms every cell up and is not counted.
 */
export async function allCells(rt: Runtime, adapterIds: string[], reps = 3): Promise<Record<string, Cell>> {
  const runs: Record<string, Cell[]> = {};
  for (let round = 0; round <= reps; round++) {
    for (const [name, blend] of Object.entries(blends(adapterIds))) {
      await rt.setBlend(blend);
      const c = await once(rt);
      if (round > 0) (runs[name] ??= []).push(c);
    }
  }
  await rt.setBlend(null);
  return Object.fromEntries(Object.entries(runs).map(([name, r]) => [name, medianCell(r)]));
}
