// Arithmetic per decoded token, in multiply-adds, with and without a blend's
// run-time LoRA. If decoding were nothing but multiply-adds, decode with the
// adapters would run at base / (base + adapters) of the speed without; the
// rest of a token's work, which adapters don't grow, lifts the measured ratio.
import type { ModelConfig } from './config';
import { projShape, TARGETS, type Adapter } from './lora';

/**
 * Multiply-adds of one token decoded at position `pos` with no adapter: the
 * seven projections of every layer, attention over the pos + 1 cached
 * positions (scores, then the weighted sum of values), and the logits.
 */
export function decodeMacs(cfg: ModelConfig, pos: number): number {
  let projections = 0;
  for (const t of TARGETS) {
    const [out, inp] = projShape(cfg, t);
    projections += out * inp;
  }
  const attention = 2 * cfg.nHeads * cfg.headDim * (pos + 1);
  return cfg.nLayers * (projections + attention) + cfg.vocabSize * cfg.dim;
}

/** Multiply-adds an adapter adds to one decoded token in a delta blend: r·in for A, then r·out for B, per adapted projection. */
export function adapterMacs(a: Adapter): number {
  let n = 0;
  for (const p of a.parts.values()) n += p.a.length + p.bt.length;
  return n;
}
