// The CPU backend: the reference forward pass of model.ts, in TypeScript. Its mat-vecs run in
// WebAssembly SIMD128 when the engine loaded the weights into a WasmArena (wasm/arena.ts,
// EngineOptions.cpuKernels), and in TypeScript (ops.ts's matvecJs) otherwise.
import type { ModelConfig } from '../config';
import { createRunState, forward, weightTensors, type RunState, type Weights } from '../model';
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
    this.weightBytes = weightTensors(weights).reduce((s, a) => s + a.byteLength, 0);
  }

  async forward(token: number, pos: number, wantLogits: boolean): Promise<Float32Array | null> {
    const logits = forward(this.cfg, this.weights, this.state, token, pos, wantLogits);
    return wantLogits ? logits : null;
  }

  syncLora(): void {} // the CPU forward reads the LoraSlots directly
  syncWeights(): void {}
  dispose(): void {}
}
