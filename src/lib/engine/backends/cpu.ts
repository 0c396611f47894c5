// The CPU backend: the reference forward pass of model.ts, in TypeScript.
import type { ModelConfig } from '../config';
import { createRunState, forward, type RunState, type Weights } from '../model';
import type { Backend } from './backend';

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly weightFormat = 'f32' as const;
  readonly weightBytes: number;
  private readonly state: RunState;

  constructor(
    private readonly cfg: ModelConfig,
    private readonly weights: Weights,
    contextLength: number,
  ) {
    this.state = createRunState(cfg, contextLength);
    const arrays = [weights.embed, weights.norm, ...(weights.head === weights.embed ? [] : [weights.head])];
    for (const L of weights.layers) arrays.push(L.attnNorm, L.ffnNorm, ...Object.values(L.proj).flatMap((p) => (p.bias ? [p.w, p.bias] : [p.w])));
    this.weightBytes = arrays.reduce((s, a) => s + a.byteLength, 0);
  }

  async forward(token: number, pos: number, wantLogits: boolean): Promise<Float32Array | null> {
    const logits = forward(this.cfg, this.weights, this.state, token, pos, wantLogits);
    return wantLogits ? logits : null;
  }

  syncLora(): void {} // the CPU forward reads the LoraSlots directly
  syncWeights(): void {}
  dispose(): void {}
}
