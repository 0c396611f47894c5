// The engine-neutral runtime interface: what the app, the router and the
// benchmarks use, implemented by our engine (crayon-engine.ts) and, later, by
// a web-llm backend. Nothing here depends on where the runtime runs: the
// worker proxy implements the same interface.
import type { Blend } from '../engine/lora';
import type { ChatMessage } from '../engine/tokenizer';
import type { SamplingOptions } from '../engine/sampler';

export type { Blend, ChatMessage, SamplingOptions };

/** One progress type for every download and load in the project. */
export interface Progress {
  /** Bytes done and total (total 0 when unknown). */
  loaded: number;
  total: number;
  /** The file being read, when there is one. */
  file?: string;
}

export interface GenerateRequest extends SamplingOptions {
  /** Keep going past the end-of-sequence token (benchmarks). */
  ignoreEos?: boolean;
  /** A conversation (rendered with the chat template) or a raw prompt. */
  messages?: ChatMessage[];
  prompt?: string;
  maxTokens?: number;
  stop?: string[];
  /** A blend for this request only; the session's blend otherwise. */
  blend?: Blend | null;
}

export interface GenerateResult {
  text: string;
  tokens: number[];
  /** Log-probability of each generated token under the model (temperature 1). */
  logprobs: number[];
  finishReason: 'stop' | 'length' | 'eos';
  promptTokens: number;
  /** Prompt processing (to the first token's logits), and the forward passes after it. */
  timings: { prefillMs: number; decodeMs: number; decodeSteps: number };
}

export interface ScoreResult {
  /** Per continuation: summed and mean token log-probability given the prompt. */
  sum: number[];
  mean: number[];
  tokens: number[];
}

export interface RuntimeInfo {
  runtime: string; // e.g. 'crayon-cpu', 'crayon-webgpu'
  backend: 'cpu' | 'webgpu';
  /** How the weights are stored where they are computed on (e.g. 'f32', 'bf16'). */
  weightFormat?: string;
  /** Bytes the weights take there (LoRA adapters not counted). */
  weightBytes?: number;
  /** Bytes the weights take in the checkpoint's files (a quantized GGUF: far fewer than weightBytes). */
  fileBytes?: number;
  architecture: string;
  params: number;
  contextLength: number;
  adapters: string[];
}

export interface CallOptions {
  signal?: AbortSignal;
  onToken?: (text: string, token: number, logprob: number) => void;
}

export interface Runtime {
  info(): RuntimeInfo;
  generate(req: GenerateRequest, opts?: CallOptions): Promise<GenerateResult>;
  /** Log-likelihood of each continuation after the prompt (or conversation + generation prompt). */
  score(prompt: { messages?: ChatMessage[]; prompt?: string }, continuations: string[], opts?: { blend?: Blend | null; signal?: AbortSignal }): Promise<ScoreResult>;
  /** Crayon's feature of each text (see the pool's embedder definition). */
  embed(texts: string[]): Promise<Float32Array[]>;
  /** Renders a conversation with the model's chat template. */
  renderChat(messages: ChatMessage[], addGenerationPrompt: boolean): Promise<string>;
  loadAdapter(id: string, files: { config: unknown; weights: Uint8Array }): Promise<void>;
  removeAdapter(id: string): Promise<void>;
  setBlend(blend: Blend | null): Promise<void>;
  unload(): Promise<void>;
}
