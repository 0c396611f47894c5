// What the engine needs from a backend: run one token at a position (with the
// KV cache kept by the backend) and give back the next-token logits when asked,
// and follow changes of adapters, blends and merged weights. Two backends:
// cpu.ts, the reference, and webgpu.ts (WGSL; weights in f32, f16 or bf16).

export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  /** How the model's weights are held for this backend's arithmetic (which is f32 on both). */
  readonly weightFormat: 'f32' | 'f16' | 'bf16';
  /** Bytes the model's weights take as this backend holds them (LoRA factors not counted). */
  readonly weightBytes: number;
  /** Runs `token` at `pos`; returns the logits (a copy or a view valid until the next call) if `wantLogits`. */
  forward(token: number, pos: number, wantLogits: boolean): Promise<Float32Array | null>;
  /** Adapters were added or removed, or the blend changed: re-read every projection's LoraSlot. */
  syncLora(): void;
  /** Projection weights changed in place (a blend was merged or unmerged). */
  syncWeights(): void;
  dispose(): void;
}
