// The page side of the engine worker: a Runtime whose calls travel to the
// worker, so callers don't care where the model runs.
import { RpcClient, type Endpoint } from '../protocol/rpc';
import type { CheckpointSource, EngineProtocol, LoadOptions } from './engine-protocol';
import type { Blend, CallOptions, ChatMessage, GenerateRequest, GenerateResult, Progress, Runtime, RuntimeInfo, ScoreResult } from './types';

export class WorkerRuntime implements Runtime {
  private readonly rpc: RpcClient<EngineProtocol>;
  private cachedInfo: RuntimeInfo | null = null;

  constructor(endpoint: Endpoint) {
    this.rpc = new RpcClient<EngineProtocol>(endpoint);
  }

  async load(source: CheckpointSource, opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void } & LoadOptions = {}): Promise<RuntimeInfo> {
    const { signal, onProgress, ...load } = opts;
    this.cachedInfo = await this.rpc.call('load', { source, ...load }, { signal, onProgress });
    return this.cachedInfo;
  }

  info(): RuntimeInfo {
    if (!this.cachedInfo) throw new Error('load() first');
    return this.cachedInfo;
  }

  generate(req: GenerateRequest, opts: CallOptions = {}): Promise<GenerateResult> {
    return this.rpc.call('generate', req, { signal: opts.signal, onProgress: (t) => opts.onToken?.(t.text, t.token, t.logprob) });
  }

  score(prompt: { messages?: ChatMessage[]; prompt?: string }, continuations: string[], opts: { blend?: Blend | null; signal?: AbortSignal } = {}): Promise<ScoreResult> {
    return this.rpc.call('score', { prompt, continuations, blend: opts.blend }, { signal: opts.signal });
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    return this.rpc.call('embed', { texts });
  }

  renderChat(messages: ChatMessage[], addGenerationPrompt: boolean): Promise<string> {
    return this.rpc.call('renderChat', { messages, addGenerationPrompt });
  }

  async loadAdapter(id: string, files: { config: unknown; weights: Uint8Array }): Promise<void> {
    await this.rpc.call('loadAdapter', { id, ...files });
    this.cachedInfo = await this.rpc.call('info', null);
  }

  async removeAdapter(id: string): Promise<void> {
    await this.rpc.call('removeAdapter', { id });
    this.cachedInfo = await this.rpc.call('info', null);
  }

  async setBlend(blend: Blend | null): Promise<void> {
    await this.rpc.call('setBlend', { blend });
  }

  /** Next-token logits after raw token ids (parity checks). */
  logitsFor(ids: number[]): Promise<Float32Array> {
    return this.rpc.call('logits', { ids });
  }

  embedIds(ids: number[]): Promise<Float32Array> {
    return this.rpc.call('embedIds', { ids });
  }

  async unload(): Promise<void> {
    await this.rpc.call('unload', null);
    this.cachedInfo = null;
  }
}
