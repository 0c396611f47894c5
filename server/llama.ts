// The server model in llama.cpp (node-llama-cpp, CPU): the base model, its
// pool of LoRA adapters, and one llama.cpp context per blend (LoRA scales are
// fixed per context). Memory is bounded: at most `maxContexts` contexts exist
// at once (an idle one is replaced, least recently used first), each with
// `sequences` sequences; a request beyond them waits in one queue of at most
// `maxQueue`, and beyond that is refused with a BusyError (503, Retry-After).
import { readFileSync } from 'node:fs';
import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';
import { Tokenizer, type ChatMessage } from '../src/lib/engine/tokenizer';

export interface Pool {
  id: string;
  adapters: Map<string, string>; // id -> adapter.gguf path
}

/** The world's server pool: its manifest and each adapter's GGUF. */
export function loadPool(world: string): Pool {
  const manifest = JSON.parse(readFileSync(`${world}/server-pool/pool.json`, 'utf8')) as { id: string; adapters: { id: string; path: string }[] };
  return { id: manifest.id, adapters: new Map(manifest.adapters.map((a) => [a.id, `${world}/server-pool/${a.path}/adapter.gguf`])) };
}

export interface GenerateOptions {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number | null;
  stop: string[];
  signal: AbortSignal;
  onToken: (text: string, logprob: number) => void;
  /** Called once a sequence is held, before the prompt is evaluated (a stream sends its headers then). */
  onStart?: () => void;
}

interface Slot {
  key: string;
  /** Settles when the context exists (after the context it replaces is disposed). */
  ready: Promise<void>;
  context: LlamaContext | null;
  free: LlamaContextSequence[];
  /** Sequences handed out (or promised to a request waiting for `ready`). */
  busy: number;
}

interface Waiter {
  key: string;
  adapters: { filePath: string; scale: number }[];
  grant: (s: Slot) => void;
  fail: (e: unknown) => void;
}

export interface ServerModelOptions {
  /** The most llama.cpp contexts alive at once (one per blend in use): a hard bound, creating ones included. */
  maxContexts: number;
  /** Sequences per context: requests of one blend answered at once. */
  sequences: number;
  /** Tokens per sequence. */
  contextSize: number;
  /** Requests that may wait for a sequence; beyond it a request is refused at once (503). */
  maxQueue: number;
}

export const DEFAULT_MODEL_OPTIONS: ServerModelOptions = { maxContexts: 4, sequences: 4, contextSize: 256, maxQueue: 16 };

/** The server is at its bound: the caller should retry after `retryAfter` seconds. */
export class BusyError extends Error {
  readonly status = 503;
  constructor(readonly retryAfter: number) {
    super(`The server is busy (every sequence in use and ${retryAfter > 0 ? 'the queue full' : 'no queue'}); retry in ${retryAfter} s.`);
  }
}

/** A prompt that can't fit: prompt tokens plus max_tokens exceed a sequence's context. */
export class ContextOverflowError extends Error {
  readonly status = 400;
  readonly code = 'context_length_exceeded';
  constructor(message: string) {
    super(message);
  }
}

/** The generation stopped because its signal fired (the client left, or the server's timeout). */
export class GenerationAborted extends Error {
  constructor(readonly text: string) {
    super('The generation was stopped.');
  }
}

export class ServerModel {
  private readonly slots = new Map<string, Slot>(); // least recently used first
  private readonly queue: Waiter[] = [];
  /** Mean milliseconds a request holds a sequence (for Retry-After). */
  private meanHoldMs = 500;
  /** Generations stopped early by their signal (client gone, timeout): for tests and logs. */
  aborted = 0;
  /** The most contexts ever alive at once: for tests of the bound. */
  peakContexts = 0;
  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    readonly pools: Map<string, Pool>,
    readonly name: string,
    readonly opts: ServerModelOptions,
  ) {}

  static async load(dir: string, pools: Pool[], opts: Partial<ServerModelOptions> = {}): Promise<ServerModel> {
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    const model = await llama.loadModel({ modelPath: `${dir}/model.gguf` });
    const tokenizer = new Tokenizer(JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')), JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')));
    return new ServerModel(llama, model, tokenizer, new Map(pools.map((p) => [p.id, p])), 'crayon-server', { ...DEFAULT_MODEL_OPTIONS, ...opts });
  }

  /** Contexts alive now, by blend key: for tests of the bound. */
  get contextKeys(): string[] {
    return [...this.slots.keys()];
  }

  /** Requests waiting for a sequence now. */
  get queued(): number {
    return this.queue.length;
  }

  /** A sequence of the blend's context now, or false: reuses the blend's context, else creates one in a free place or in place of an idle one. */
  private tryTake(key: string, adapters: Waiter['adapters']): Slot | false {
    const hit = this.slots.get(key);
    if (hit) {
      if (hit.busy >= this.opts.sequences) return false;
      this.slots.delete(key);
      this.slots.set(key, hit);
      hit.busy++;
      return hit;
    }
    let victim: Slot | undefined;
    if (this.slots.size >= this.opts.maxContexts) {
      victim = [...this.slots.values()].find((s) => s.busy === 0 && s.context);
      if (!victim) return false;
      this.slots.delete(victim.key);
    }
    const s: Slot = { key, ready: Promise.resolve(), context: null, free: [], busy: 1 };
    s.ready = (async () => {
      await victim?.context?.dispose();
      try {
        s.context = await this.model.createContext({
          contextSize: this.opts.contextSize,
          sequences: this.opts.sequences,
          // One thread: on this 2-core machine llama.cpp's default (2 threads) took ~870 ms to the
          // first token of a 20-token prompt, one thread 4 ms (thread hand-offs dominate a small model).
          threads: 1,
          ...(adapters.length ? { lora: { adapters } } : {}),
        });
      } catch (e) {
        this.slots.delete(key);
        this.pump();
        throw e;
      }
      s.free = Array.from({ length: this.opts.sequences }, () => s.context!.getSequence());
    })();
    this.slots.set(key, s);
    this.peakContexts = Math.max(this.peakContexts, this.slots.size);
    return s;
  }

  /** A sequence of the blend's context: at once, after waiting in the bounded queue, or a BusyError. */
  private async acquire(key: string, adapters: Waiter['adapters'], signal: AbortSignal): Promise<{ slot: Slot; seq: LlamaContextSequence }> {
    let slot = this.tryTake(key, adapters);
    if (!slot) {
      if (this.queue.length >= this.opts.maxQueue) throw new BusyError(this.retryAfter());
      slot = await new Promise<Slot>((grant, fail) => {
        const w: Waiter = { key, adapters, grant, fail };
        this.queue.push(w);
        signal.addEventListener('abort', () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) (this.queue.splice(i, 1), fail(new GenerationAborted('')));
        }, { once: true });
      });
    }
    await slot.ready;
    return { slot, seq: slot.free.pop()! };
  }

  /** Serves waiting requests in order while each can be served. */
  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i];
      const slot = this.tryTake(w.key, w.adapters);
      if (slot) {
        this.queue.splice(i, 1);
        w.grant(slot);
      } else i++;
    }
  }

  private async release(s: Slot, seq: LlamaContextSequence): Promise<void> {
    // The context may have been disposed under us by dispose() at shutdown.
    if (seq.disposed) return;
    await seq.clearHistory();
    s.free.push(seq);
    s.busy--;
    this.pump();
  }

  /** Seconds until a place is likely free: the queue ahead shared over every sequence. */
  private retryAfter(): number {
    const places = this.opts.maxContexts * this.opts.sequences;
    return Math.max(1, Math.ceil((((this.queue.length + 1) / places) * this.meanHoldMs) / 1000));
  }

  /** Throws a ContextOverflowError when the conversation plus `maxTokens` can't fit a sequence; returns the prompt's tokens. */
  promptTokens(messages: ChatMessage[], maxTokens: number): Token[] {
    const prompt = this.tokenizer.encode(this.tokenizer.chat(messages, true)) as Token[];
    if (prompt.length + maxTokens > this.opts.contextSize) {
      throw new ContextOverflowError(`The conversation (${prompt.length} tokens) plus max_tokens ${maxTokens} exceeds the context of ${this.opts.contextSize} tokens.`);
    }
    return prompt;
  }

  /**
   * Generates a reply to `messages` under a blend (adapter id -> weight) of `pool`. Throws a
   * ContextOverflowError before anything is queued, a BusyError at the bound, and a GenerationAborted
   * (with the text so far) when the signal fires: a cut answer is never passed off as a whole one.
   */
  async generate(messages: ChatMessage[], blend: { pool: string; weights: Record<string, number> } | null, o: GenerateOptions): Promise<{ text: string; tokens: number; finish: 'stop' | 'length' }> {
    const pool = blend ? this.pools.get(blend.pool) : undefined;
    const adapters = pool ? Object.entries(blend!.weights).filter(([, w]) => w !== 0).sort(([a], [b]) => a.localeCompare(b)).map(([id, w]) => ({ filePath: pool.adapters.get(id)!, scale: w })) : [];
    const prompt = this.promptTokens(messages, o.maxTokens);
    const { slot, seq } = await this.acquire(JSON.stringify(adapters), adapters, o.signal);
    const held = performance.now();
    o.onStart?.();
    const out: number[] = [];
    let text = '';
    let finish: 'stop' | 'length' = 'length';
    try {
      const eos = this.model.tokens.eos;
      const it = seq.evaluateWithMetadata(prompt, { confidence: true }, { temperature: o.temperature, topP: o.topP, seed: o.seed ?? undefined });
      for await (const { token, confidence } of it) {
        if (o.signal.aborted) break;
        if (token === eos) {
          finish = 'stop';
          break;
        }
        out.push(token);
        const full = this.tokenizer.decode(out);
        const cut = o.stop.map((s) => full.indexOf(s)).filter((i) => i >= 0);
        const end = cut.length ? Math.min(...cut) : full.length;
        if (end > text.length && !full.endsWith('\uFFFD')) {
          o.onToken(full.slice(text.length, end), Math.log(Math.max(confidence, 1e-30)));
          text = full.slice(0, end);
        }
        if (cut.length) {
          finish = 'stop';
          break;
        }
        if (out.length >= o.maxTokens) break;
      }
      if (o.signal.aborted) {
        this.aborted++;
        throw new GenerationAborted(text);
      }
      // llama.cpp ends the stream itself at the end token, without yielding it
      if (out.length < o.maxTokens) finish = 'stop';
    } finally {
      this.meanHoldMs = 0.9 * this.meanHoldMs + 0.1 * (performance.now() - held);
      await this.release(slot, seq);
    }
    return { text, tokens: out.length, finish };
  }

  async dispose(): Promise<void> {
    for (const w of this.queue.splice(0)) w.fail(new GenerationAborted(''));
    for (const s of this.slots.values()) await s.ready.then(() => s.context?.dispose(), () => undefined);
    this.slots.clear();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
