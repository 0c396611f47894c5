// Arithmetic per decoded token, in multiply-adds: the floor under what a
// blend's run-time LoRA can cost. On a backend bound by arithmetic, decode
// with adapters runs at best at base / (base + adapters) of the speed without.
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
