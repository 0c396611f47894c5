// The server model in llama.cpp (node-llama-cpp, CPU): the base model, its
// pool of LoRA adapters, and one llama.cpp context per blend (LoRA scales are
// fixed per context), kept in a small LRU; each context serves a few
// sequences at once and queues the rest.
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
}

interface Slot {
  key: string;
  context: LlamaContext;
  free: LlamaContextSequence[];
  waiting: ((s: LlamaContextSequence) => void)[];
  busy: number;
}

export class ServerModel {
  private readonly slots = new Map<string, Slot>(); // LRU: Map keeps insertion order
  /** Contexts being created, so concurrent requests for one blend share one context. */
  private readonly creating = new Map<string, Promise<Slot>>();
  /** Generations stopped early by their signal (client gone, timeout): for tests and logs. */
  aborted = 0;
  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    readonly pools: Map<string, Pool>,
    readonly name: string,
    private readonly opts: { maxContexts: number; sequences: number; contextSize: number },
  ) {}

  static async load(dir: string, pools: Pool[], opts = { maxContexts: 4, sequences: 4, contextSize: 256 }): Promise<ServerModel> {
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    const model = await llama.loadModel({ modelPath: `${dir}/model.gguf` });
    const tokenizer = new Tokenizer(JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')), JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')));
    return new ServerModel(llama, model, tokenizer, new Map(pools.map((p) => [p.id, p])), 'crayon-server', opts);
  }

  /** Contexts alive now, by blend key: for tests of the LRU. */
  get contextKeys(): string[] {
    return [...this.slots.keys()];
  }

  private async slot(adapters: { filePath: string; scale: number }[]): Promise<Slot> {
    const key = JSON.stringify(adapters);
    const hit = this.slots.get(key);
    if (hit) {
      this.slots.delete(key);
      this.slots.set(key, hit);
      return hit;
    }
    const pending = this.creating.get(key);
    if (pending) return pending;
    const created = this.createSlot(key, adapters).finally(() => this.creating.delete(key));
    this.creating.set(key, created);
    return created;
  }

  private async createSlot(key: string, adapters: { filePath: string; scale: number }[]): Promise<Slot> {
    // Evict the least recently used idle context when full.
    if (this.slots.size >= this.opts.maxContexts) {
      const victim = [...this.slots.values()].find((s) => s.busy === 0 && s.waiting.length === 0);
      if (victim) {
        this.slots.delete(victim.key);
        await victim.context.dispose();
      }
    }
    const context = await this.model.createContext({
      contextSize: this.opts.contextSize,
      sequences: this.opts.sequences,
      // One thread: on this 2-core machine llama.cpp's default (2 threads) took ~870 ms to the
      // first token of a 20-token prompt, one thread 4 ms (thread hand-offs dominate a small model).
      threads: 1,
      ...(adapters.length ? { lora: { adapters } } : {}),
    });
    const free = Array.from({ length: this.opts.sequences }, () => context.getSequence());
    const s: Slot = { key, context, free, waiting: [], busy: 0 };
    this.slots.set(key, s);
    return s;
  }

  private acquire(s: Slot): Promise<LlamaContextSequence> {
    s.busy++;
    const seq = s.free.pop();
    return seq ? Promise.resolve(seq) : new Promise((resolve) => s.waiting.push(resolve));
  }

  private async release(s: Slot, seq: LlamaContextSequence): Promise<void> {
    // The context may have been disposed under us by dispose() at shutdown.
    if (seq.disposed) return;
    await seq.clearHistory();
    s.busy--;
    const next = s.waiting.shift();
    if (next) next(seq);
    else s.free.push(seq);
  }

  /** Generates a reply to `messages` under a blend (adapter id -> weight) of `pool`. */
  async generate(messages: ChatMessage[], blend: { pool: string; weights: Record<string, number> } | null, o: GenerateOptions): Promise<{ text: string; tokens: number; finish: 'stop' | 'length' }> {
    const pool = blend ? this.pools.get(blend.pool) : undefined;
    const adapters = pool ? Object.entries(blend!.weights).filter(([, w]) => w !== 0).sort(([a], [b]) => a.localeCompare(b)).map(([id, w]) => ({ filePath: pool.adapters.get(id)!, scale: w })) : [];
    const prompt = this.tokenizer.encode(this.tokenizer.chat(messages, true)) as Token[];
    if (prompt.length + o.maxTokens > this.opts.contextSize) {
      throw Object.assign(new Error(`The conversation (${prompt.length} tokens) plus max_tokens ${o.maxTokens} exceeds the context of ${this.opts.contextSize} tokens.`), { status: 400 });
    }
    const slot = await this.slot(adapters);
    const seq = await this.acquire(slot);
    const out: number[] = [];
    let text = '';
    let finish: 'stop' | 'length' = 'length';
    try {
      const eos = this.model.tokens.eos;
      const it = seq.evaluateWithMetadata(prompt, { confidence: true }, { temperature: o.temperature, topP: o.topP, seed: o.seed ?? undefined });
      for await (const { token, confidence } of it) {
        if (o.signal.aborted) {
          this.aborted++;
          finish = 'stop';
          break;
        }
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
      // llama.cpp ends the stream itself at the end token, without yielding it
      if (out.length < o.maxTokens) finish = 'stop';
    } finally {
      await this.release(slot, seq);
    }
    return { text, tokens: out.length, finish };
  }

  async dispose(): Promise<void> {
    for (const s of this.slots.values()) await s.context.dispose();
    this.slots.clear();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
