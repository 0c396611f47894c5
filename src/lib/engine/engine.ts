// Crayon's own engine: a Llama-family checkpoint with any number of LoRA
// adapters loaded once and blended at run time. Implements the engine-neutral
// Runtime interface; runs the same in Node and in a browser worker.
import { AbortError, AppError, throwIfAborted } from '../errors';
import type { CallOptions, GenerateRequest, GenerateResult, Runtime, RuntimeInfo, ScoreResult } from '../runtimes/types';
import type { ModelConfig } from './config';
import { checkBlend, parseAdapter, type Adapter, type Blend } from './lora';
import { buildWeights, queryFeature, weightTensors, type Weights } from './model';
import type { Backend } from './backends/backend';
import { CpuBackend } from './backends/cpu';
import { WasmArena, wasmSimdSupported } from './backends/wasm/arena';
import type { MatvecLayout, WeightFormat } from './backends/kernels';
import { argmax, logSoftmax, Sampler } from './sampler';
import { Tokenizer, type ChatMessage } from './tokenizer';

/** One weight tensor of a checkpoint: row-major shape, its type in the file, its bytes there, and its values as f32. */
export interface TensorEntry {
  shape: number[];
  /** 'F32', 'F16', 'BF16', or a GGUF type such as 'Q4_1'. */
  dtype: string;
  bytes: number;
  read(): Float32Array;
}

export interface Checkpoint {
  config: ModelConfig;
  /** Every weight tensor by its Hugging Face name (safetensors.ts or gguf-checkpoint.ts builds the map). */
  tensors: Map<string, TensorEntry>;
  /** Null only for token-level use (e.g. tiny parity checkpoints without tokenizer files). */
  tokenizer: Tokenizer | null;
}

export interface EngineOptions {
  /** Context length (KV cache size); defaults to the model's, at most 2048. */
  contextLength?: number;
  /** 'auto' (default): WebGPU when a device is given and the model fits it, else CPU. */
  backend?: 'auto' | 'cpu' | 'webgpu';
  /** A WebGPU device (navigator.gpu's in a browser, the `webgpu` package's in Node). */
  gpu?: GPUDevice;
  /**
   * How WebGPU stores the weights: 'auto' (default) keeps a checkpoint whose weights are all
   * F16 (or all BF16) in that format, at half of f32's memory and bandwidth, and stores anything
   * else in f32. 'f16' / 'bf16' round f32 weights to 16 bits; 'f32' always widens. The
   * arithmetic is f32 either way; the CPU backend always holds f32.
   */
  gpuWeights?: 'auto' | WeightFormat;
  /**
   * How WebGPU's mat-vecs spread a row over invocations (kernels.ts): 'row' (default), one
   * invocation per row, measured the faster on SwiftShader; 'split', 16 invocations per row and
   * a reduction, for GPUs where a row per invocation leaves most of the chip idle.
   */
  gpuMatvec?: MatvecLayout;
  /**
   * The CPU's mat-vec kernels: 'auto' (default) WebAssembly SIMD128 when the runtime has it and the
   * f32 weights fit a WebAssembly memory (4 GiB), else TypeScript; 'wasm' insists ('backend-unavailable'
   * if it can't); 'js' the TypeScript reference (ops.ts). With wasm the weights are loaded straight
   * into its memory (backends/wasm/arena.ts), held once either way.
   */
  cpuKernels?: 'auto' | 'wasm' | 'js';
}

/** F16 or BF16 when every 2-D tensor (the matrices a backend stores) has that dtype, else f32 (quantized ones included). */
function sourceFormat(tensors: Map<string, TensorEntry>): WeightFormat {
  const dtypes = new Set<string>();
  for (const t of tensors.values()) if (t.shape.length === 2) dtypes.add(t.dtype);
  const only = dtypes.size === 1 ? [...dtypes][0] : 'F32';
  return only === 'F16' ? 'f16' : only === 'BF16' ? 'bf16' : 'f32';
}

/** The WebAssembly memory the weights load into, or null for plain arrays (TypeScript kernels). */
function cpuArena(cfg: ModelConfig, kernels: 'auto' | 'wasm' | 'js'): WasmArena | null {
  if (!['auto', 'wasm', 'js'].includes(kernels)) throw new AppError('invalid-argument', `cpuKernels must be 'auto', 'wasm' or 'js', not ${JSON.stringify(kernels)}.`);
  if (kernels === 'js') return null;
  if (kernels === 'wasm') return WasmArena.forModel(cfg);
  if (!wasmSimdSupported()) return null;
  try {
    return WasmArena.forModel(cfg);
  } catch (err) {
    // 'auto': a model past 4 GiB of f32, or a memory the runtime won't allocate in one piece, runs on the reference kernels
    if (err instanceof AppError && err.code === 'backend-unavailable') return null;
    if (err instanceof RangeError) return null;
    throw err;
  }
}

/** Lets queued messages (e.g. a cancel) through between tokens. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export class CrayonEngine implements Runtime {
  readonly cfg: ModelConfig;
  readonly weights: Weights;
  /** Which kernels the CPU's mat-vecs run (EngineOptions.cpuKernels): where the weights were loaded. */
  readonly cpuKernels: 'wasm-simd' | 'js';
  private readonly tok: Tokenizer | null;
  private backend!: Backend;
  private readonly ctx: number;
  /** The one 16-bit format all the checkpoint's matrices share, else f32: what 'auto' stores on the GPU. */
  private readonly sourceFormat: WeightFormat;
  /** The weights' bytes in the checkpoint's files (quantized GGUF tensors take far fewer than the f32 they widen to). */
  private readonly fileBytes: number;
  private readonly adapters = new Map<string, Adapter>();
  private blend: Blend | null = null;
  /** The blend currently baked into the weights (merged mode), to take back out. */
  private merged: Blend | null = null;
  /** Layer 0's q_proj as it was before the merge: the embedder feature is defined without adapters. */
  private unmergedQ0: Float32Array | null = null;
  /** Requests run one at a time, in arrival order: the tail of that queue. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Loads the weights and starts the chosen backend. */
  static async create(ckpt: Checkpoint, opts: EngineOptions = {}): Promise<CrayonEngine> {
    const e = new CrayonEngine(ckpt, opts);
    const want = opts.backend ?? 'auto';
    if (opts.gpuWeights !== undefined && !['auto', 'f32', 'f16', 'bf16'].includes(opts.gpuWeights)) {
      throw new AppError('invalid-argument', `gpuWeights must be 'auto', 'f32', 'f16' or 'bf16', not ${JSON.stringify(opts.gpuWeights)}.`);
    }
    if (opts.gpuMatvec !== undefined && !['row', 'split'].includes(opts.gpuMatvec)) {
      throw new AppError('invalid-argument', `gpuMatvec must be 'row' or 'split', not ${JSON.stringify(opts.gpuMatvec)}.`);
    }
    if (want === 'webgpu' && !opts.gpu) throw new AppError('backend-unavailable', 'The WebGPU backend was requested but no GPU device is available.');
    if (want !== 'cpu' && opts.gpu) {
      const { WebGpuBackend } = await import('./backends/webgpu');
      try {
        const format = !opts.gpuWeights || opts.gpuWeights === 'auto' ? e.sourceFormat : opts.gpuWeights;
        e.backend = await WebGpuBackend.create(opts.gpu, e.cfg, e.weights, e.ctx, format, opts.gpuMatvec);
      } catch (err) {
        if (want === 'webgpu') throw err;
        e.backend = new CpuBackend(e.cfg, e.weights, e.ctx); // 'auto': the CPU always works
      }
    } else e.backend = new CpuBackend(e.cfg, e.weights, e.ctx);
    return e;
  }

  private constructor(ckpt: Checkpoint, opts: EngineOptions = {}) {
    this.cfg = ckpt.config;
    const arena = cpuArena(this.cfg, opts.cpuKernels ?? 'auto');
    this.cpuKernels = arena ? 'wasm-simd' : 'js';
    this.weights = buildWeights(this.cfg, (name) => {
      const t = ckpt.tensors.get(name);
      return t && { shape: t.shape, data: () => (arena ? arena.adopt(t.read()) : t.read()) };
    });
    this.sourceFormat = sourceFormat(ckpt.tensors);
    this.fileBytes = [...ckpt.tensors.values()].reduce((n, t) => n + t.bytes, 0);
    this.tok = ckpt.tokenizer;
    this.ctx = Math.min(this.cfg.maxSeqLen, opts.contextLength ?? 2048);
  }

  get tokenizer(): Tokenizer {
    if (!this.tok) throw new AppError('missing-file', 'This checkpoint has no tokenizer files, so it can only run token ids.');
    return this.tok;
  }

  info(): RuntimeInfo {
    const params = weightTensors(this.weights).reduce((s, t) => s + t.length, 0);
    return { runtime: `crayon-${this.backend.name}`, backend: this.backend.name, weightFormat: this.backend.weightFormat, weightBytes: this.backend.weightBytes, fileBytes: this.fileBytes, architecture: this.cfg.architecture, params, contextLength: this.ctx, adapters: [...this.adapters.keys()] };
  }

  async renderChat(messages: ChatMessage[], addGenerationPrompt: boolean): Promise<string> {
    return this.tokenizer.chat(messages, addGenerationPrompt);
  }

  // ---- adapters and blends ----

  // Adapters and the session blend change only between requests: each change waits in the request queue,
  // so a request runs under one set of weights from its first token to its last, and the change is not lost
  // when the request puts its own blend back.

  loadAdapter(id: string, files: { config: unknown; weights: Uint8Array }): Promise<void> {
    return this.serial(async () => this.loadAdapterNow(id, files));
  }

  private loadAdapterNow(id: string, files: { config: unknown; weights: Uint8Array }): void {
    if (this.adapters.has(id)) throw new AppError('invalid-argument', `An adapter named "${id}" is already loaded.`);
    const adapter = parseAdapter(id, files.config, files.weights, this.cfg);
    this.adapters.set(id, adapter);
    for (const [slot, part] of adapter.parts) {
      const [layer, target] = slot.split('.') as [string, keyof Weights['layers'][number]['proj']];
      this.weights.layers[Number(layer)].proj[target].lora.parts.push(part);
    }
    this.plan(this.blend);
  }

  removeAdapter(id: string): Promise<void> {
    return this.serial(async () => this.removeAdapterNow(id));
  }

  private removeAdapterNow(id: string): void {
    if (!this.adapters.has(id)) throw new AppError('not-loaded', `Adapter "${id}" is not loaded.`);
    if (this.merged) this.unmerge();
    for (const L of this.weights.layers) {
      for (const p of Object.values(L.proj)) {
        const i = p.lora.parts.findIndex((x) => x.adapterId === id);
        if (i >= 0) p.lora.parts.splice(i, 1);
      }
    }
    this.adapters.delete(id);
    if (this.blend && id in this.blend.weights) {
      const { [id]: _, ...rest } = this.blend.weights;
      this.blend = { ...this.blend, weights: rest };
    }
    this.plan(this.blend);
  }

  /** The session's blend, from the next request on. Delta and factor blends switch in well under a millisecond; merged re-bakes the weights. */
  setBlend(blend: Blend | null): Promise<void> {
    return this.serial(async () => this.setBlendSync(blend));
  }

  /** setBlend at once, for callers that know no request is running (tests, benchmarks). */
  setBlendSync(blend: Blend | null): void {
    if (blend) checkBlend(blend, this.adapters);
    this.blend = blend;
    this.plan(blend);
  }

  private plan(blend: Blend | null): void {
    const wasMerged = this.merged !== null;
    if (this.merged) this.unmerge();
    for (const L of this.weights.layers) for (const p of Object.values(L.proj)) p.lora.plan(blend);
    if (blend?.mode === 'merged') {
      this.unmergedQ0 = this.weights.layers[0].proj.q_proj.w.slice();
      for (const L of this.weights.layers) for (const p of Object.values(L.proj)) p.lora.mergeInto(p.w, blend, 1);
      this.merged = blend;
    }
    if (wasMerged || this.merged) this.backend?.syncWeights();
    this.backend?.syncLora();
  }

  private unmerge(): void {
    const m = this.merged!;
    for (const L of this.weights.layers) for (const p of Object.values(L.proj)) p.lora.mergeInto(p.w, m, -1);
    // Subtracting leaves f32 rounding behind; this one matrix comes back exactly, so the feature never drifts.
    this.weights.layers[0].proj.q_proj.w.set(this.unmergedQ0!);
    this.merged = null;
    this.unmergedQ0 = null;
  }

  /** Runs `fn` after everything queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Runs `fn` after the requests before it, under its own blend, then restores the session's. */
  private withBlend<T>(blend: Blend | null | undefined, fn: () => Promise<T>): Promise<T> {
    return this.serial(() => this.runWithBlend(blend, fn));
  }

  private async runWithBlend<T>(blend: Blend | null | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      if (blend !== undefined) {
        if (blend?.mode === 'merged') throw new AppError('invalid-argument', 'A merged blend is a session setting (setBlend), not a per-request one.');
        if (blend) checkBlend(blend, this.adapters);
        this.plan(blend);
      }
      return await fn();
    } finally {
      if (blend !== undefined) this.plan(this.blend);
    }
  }

  // ---- running the model ----

  private promptIds(req: { messages?: ChatMessage[]; prompt?: string }): number[] {
    if (req.messages) return this.tokenizer.encode(this.tokenizer.chat(req.messages, true));
    if (typeof req.prompt === 'string') return this.tokenizer.encode(req.prompt);
    throw new AppError('invalid-argument', 'A request needs messages or a prompt.');
  }

  /** Feeds ids from position `start`; returns the logits after the last one. */
  private async prefill(ids: number[], start: number, signal?: AbortSignal): Promise<Float32Array> {
    if (ids.length === 0) throw new AppError('invalid-argument', 'The prompt is empty.');
    for (let i = 0; i < ids.length - 1; i++) {
      if (i % 32 === 31) {
        await yieldToEventLoop();
        throwIfAborted(signal);
      }
      await this.backend.forward(ids[i], start + i, false);
    }
    return (await this.backend.forward(ids[ids.length - 1], start + ids.length - 1, true))!;
  }

  private checkContext(n: number, what: string): void {
    if (n > this.ctx) {
      throw new AppError('context-overflow', `${what} needs ${n} tokens but the context holds ${this.ctx}; shorten the conversation or ask for fewer tokens.`, { needed: n, context: this.ctx });
    }
  }

  async generate(req: GenerateRequest, opts: CallOptions = {}): Promise<GenerateResult> {
    const ids = this.promptIds(req);
    const maxTokens = req.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new AppError('invalid-argument', 'maxTokens must be a positive integer.');
    if (ids.length === 0) throw new AppError('invalid-argument', 'The prompt is empty.');
    this.checkContext(ids.length + maxTokens, `This prompt (${ids.length} tokens) plus ${maxTokens} new tokens`);
    return this.withBlend(req.blend, async () => {
      throwIfAborted(opts.signal);
      const t0 = performance.now();
      let logits = await this.prefill(ids, 0, opts.signal);
      const prefillMs = performance.now() - t0;
      let decodeMs = 0;
      let decodeSteps = 0;
      const sampler = new Sampler(req);
      const eos = new Set(this.cfg.eosTokenIds.concat(this.tokenizer.eosTokenId ?? []));
      const tokens: number[] = [];
      const logprobs: number[] = [];
      let text = '';
      let finishReason: GenerateResult['finishReason'] = 'length';
      for (let n = 0; n < maxTokens; n++) {
        const next = sampler.sample(logits);
        const lp = logSoftmax(logits)[next];
        if (eos.has(next) && !req.ignoreEos) {
          finishReason = 'eos';
          break;
        }
        tokens.push(next);
        logprobs.push(lp);
        const full = this.tokenizer.decode(tokens);
        const stopAt = (req.stop ?? []).map((s) => full.indexOf(s)).filter((i) => i >= 0);
        const end = stopAt.length ? Math.min(...stopAt) : full.length;
        if (end > text.length && !full.endsWith('\uFFFD')) {
          opts.onToken?.(full.slice(text.length, end), next, lp);
          text = full.slice(0, end);
        }
        if (stopAt.length) {
          finishReason = 'stop';
          break;
        }
        if (n + 1 < maxTokens) {
          await yieldToEventLoop();
          if (opts.signal?.aborted) throw new AbortError();
          const t = performance.now();
          logits = (await this.backend.forward(next, ids.length + n, true))!;
          decodeMs += performance.now() - t;
          decodeSteps++;
        }
      }
      if (finishReason !== 'stop') text = this.tokenizer.decode(tokens);
      return { text, tokens, logprobs, finishReason, promptTokens: ids.length, timings: { prefillMs, decodeMs, decodeSteps } };
    });
  }

  async score(prompt: { messages?: ChatMessage[]; prompt?: string }, continuations: string[], opts: { blend?: Blend | null; signal?: AbortSignal } = {}): Promise<ScoreResult> {
    const ids = this.promptIds(prompt);
    const conts = continuations.map((c) => this.tokenizer.encode(c));
    this.checkContext(ids.length + Math.max(0, ...conts.map((c) => c.length)), 'Scoring this prompt');
    return this.withBlend(opts.blend, async () => {
      const first = logSoftmax(await this.prefill(ids, 0, opts.signal)); // shared by every continuation
      const sum: number[] = [];
      const mean: number[] = [];
      for (const c of conts) {
        let s = 0;
        let lp = first;
        for (let i = 0; i < c.length; i++) {
          s += lp[c[i]];
          if (i + 1 < c.length) lp = logSoftmax((await this.backend.forward(c[i], ids.length + i, true))!);
        }
        sum.push(s);
        mean.push(c.length ? s / c.length : 0);
        throwIfAborted(opts.signal);
      }
      return { sum, mean, tokens: conts.map((c) => c.length) };
    });
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.embedIds(this.tokenizer.encode(t)));
  }

  /** The embedder feature of raw token ids (for parity checks and benchmarks). */
  embedIds(ids: number[]): Float32Array {
    return queryFeature(this.cfg, this.weights, ids, this.unmergedQ0 ?? undefined);
  }

  /** The greedy continuation of raw token ids (n tokens), under the session's blend. */
  greedyIds(ids: number[], n: number): Promise<number[]> {
    this.checkContext(ids.length + n, 'This continuation');
    return this.withBlend(undefined, async () => {
      const out: number[] = [];
      let logits = await this.prefill(ids, 0);
      for (let i = 0; i < n; i++) {
        const best = argmax(logits);
        out.push(best);
        if (i + 1 < n) logits = (await this.backend.forward(best, ids.length + i, true))!;
      }
      return out;
    });
  }

  /** Next-token logits after raw token ids, under the session's blend (a copy). */
  logitsFor(ids: number[]): Promise<Float32Array> {
    return this.withBlend(undefined, async () => (await this.prefill(ids, 0)).slice());
  }

  async unload(): Promise<void> {
    this.adapters.clear();
    this.backend.dispose();
  }
}
