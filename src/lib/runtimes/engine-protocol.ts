// The engine worker's messages: each kind's params, result and progress.
import type { Blend, ChatMessage, GenerateRequest, GenerateResult, Progress, RuntimeInfo, ScoreResult } from './types';

/** Where a checkpoint comes from, in a form that crosses postMessage. `gguf` names a GGUF file under the base to
 * load instead of a Hugging Face folder; among picked files, a `.gguf` one is loaded as such. */
export type CheckpointSource =
  | { kind: 'url'; base: string; gguf?: string }
  | { kind: 'files'; files: File[] }
  | { kind: 'cache'; cacheName: string; base: string; gguf?: string };

/** How to run a checkpoint: the engine's options that cross postMessage (see EngineOptions). */
export interface LoadOptions {
  contextLength?: number;
  backend?: 'auto' | 'cpu' | 'webgpu';
  gpuWeights?: 'auto' | 'f32' | 'f16' | 'bf16';
  gpuMatvec?: 'row' | 'split';
}

export type TokenEvent = { text: string; token: number; logprob: number };

export type EngineProtocol = {
  load: { params: { source: CheckpointSource } & LoadOptions; result: RuntimeInfo; progress: Progress };
  info: { params: null; result: RuntimeInfo };
  generate: { params: GenerateRequest; result: GenerateResult; progress: TokenEvent };
  score: { params: { prompt: { messages?: ChatMessage[]; prompt?: string }; continuations: string[]; blend?: Blend | null }; result: ScoreResult };
  embed: { params: { texts: string[] }; result: Float32Array[] };
  renderChat: { params: { messages: ChatMessage[]; addGenerationPrompt: boolean }; result: string };
  loadAdapter: { params: { id: string; config: unknown; weights: Uint8Array }; result: null };
  removeAdapter: { params: { id: string }; result: null };
  setBlend: { params: { blend: Blend | null }; result: null };
  unload: { params: null; result: null };
  /** Next-token logits after raw token ids under the session blend: for parity checks. */
  logits: { params: { ids: number[] }; result: Float32Array };
  /** The embedder feature of raw token ids: for parity checks. */
  embedIds: { params: { ids: number[] }; result: Float32Array };
};
