// The embeddable widget's state, inside its iframe on another site. It reads
// the assistant's bundle (inline, or fetched from the owner's URL), and takes
// messages only from its parent window at an allowed origin (WidgetGate): until
// such a host speaks first, it shows nothing and answers nothing. Then it
// downloads the model and the pool once per host site (the browser partitions
// the iframe's storage by the top-level site), with progress, sets the blend,
// and answers questions through the router worker, from its own box or from
// the host's `ask`, streaming answers back to that host's origin only.
import { AbortError, AppError, isAppError, messageOf, type ErrorCode } from '../lib/errors';
import { downloadModel, listDownloaded, MODEL_CACHE } from '../lib/models/download';
import type { CheckpointSource } from '../lib/runtimes/engine-protocol';
import type { ChatMessage } from '../lib/router/router';
import { declaredOrigins, modelTarget, parseBundle, type AssistantBundle } from '../lib/widget/bundle';
import { parseOrigin } from '../lib/widget/origins';
import { fetchPool, forgetPool } from '../lib/widget/pool-fetch';
import { siteStorage, storedFiles, type SiteStorage } from '../lib/widget/site-storage';
import { envelope, WidgetGate, type Received, type RouteTaken, type Theme, type WidgetBody, type WidgetMessage } from '../lib/widget/protocol';
import { REASONS } from './chat.svelte';
import { EngineState } from './engine.svelte';

export type WidgetPhase = 'starting' | 'invalid' | 'idle' | 'loading' | 'ready' | 'failed';

export interface WidgetTurn {
  role: 'user' | 'assistant';
  content: string;
  route?: RouteTaken;
  notice?: string;
}

/** The size the widget asks its host for while open. */
export const WIDGET_SIZE = { width: 380, height: 560 };
/** Messages kept while the bundle is still being read; more are dropped. */
const PENDING_MAX = 32;
/** Turns of the conversation sent with a question (the small models have short contexts). */
const HISTORY_TURNS = 6;
const WIDGET_REASONS: Record<string, string> = {
  ...REASONS,
  'policy-local-only': 'this assistant runs on this device only',
  'policy-server-only': "this assistant's owner chose the server",
};

export class WidgetState {
  phase = $state<WidgetPhase>('starting');
  /** Raw (not a deep proxy): parts of it cross postMessage to the workers. */
  bundle = $state.raw<AssistantBundle | null>(null);
  error = $state<{ code: ErrorCode; message: string } | null>(null);
  /** A host at an allowed origin has spoken: until then nothing of the assistant shows. */
  connected = $state(false);
  open = $state(false);
  theme = $state<Theme>('light');
  /** What is being fetched or loaded, and how far along. */
  progress = $state<{ what: 'model' | 'pool' | 'load'; loaded: number; total: number } | null>(null);
  /** After loading: whether the model and pool came from this site's storage (true) or were downloaded now. */
  storedHere = $state<boolean | null>(null);
  /** False when the browser refuses this frame storage (third-party storage blocked): downloads last this visit only. */
  persistent = $state<boolean | null>(null);
  turns = $state<WidgetTurn[]>([]);
  busy = $state(false);
  /** Messages turned away (another origin or window): never answered. */
  rejected = $state(0);

  private gate: WidgetGate | null = null;
  private pending: Received[] = [];
  private engine: EngineState | null = null;
  private store: SiteStorage | null = null;
  private loading: Promise<boolean> | null = null;
  private queue: Promise<void> = Promise.resolve();
  /** The origin of the host that spoke last: replies without an ask of their own go there. */
  private hostOrigin: string | null = null;

  constructor(
    private readonly win: Window,
    private readonly io: { fetch: typeof fetch; caches?: CacheStorage; locks?: LockManager },
  ) {
    win.addEventListener('message', (e) => this.onMessage({ origin: e.origin, source: e.source, data: e.data }));
  }

  /** Reads the bundle from the iframe's fragment: `assistant` (the JSON, or a URL) and `origins` (the snippet's data-origin-allow). */
  async start(hash: string): Promise<void> {
    const params = new URLSearchParams(hash.replace(/^#/, ''));
    const assistant = (params.get('assistant') ?? '').trim();
    let text = assistant;
    try {
      if (/^https?:\/\//i.test(assistant)) text = await this.fetchBundle(assistant);
      if (!text) throw new AppError('bad-format', "No assistant was given: the snippet's data-assistant is empty.");
      this.bundle = parseBundle(text);
      this.phase = 'idle';
    } catch (e) {
      this.fail(e, 'invalid');
    }
    // The snippet's list can only narrow the bundle's, never widen it.
    let allowed = this.bundle?.allowedOrigins ?? declaredOrigins(text);
    const narrowed = params.get('origins');
    if (narrowed !== null) allowed = allowed.filter((o) => narrowed.split(/[\s,]+/).some((n) => safeOrigin(n) === o));
    // Not in a frame (embed.html opened directly): no window is the parent.
    this.gate = new WidgetGate(allowed, this.win.parent !== this.win ? this.win.parent : Symbol('no parent'));
    for (const e of this.pending.splice(0)) this.receive(e);
  }

  private async fetchBundle(url: string): Promise<string> {
    let res: Response;
    try {
      res = await this.io.fetch(url, { credentials: 'omit' });
    } catch (e) {
      throw new AppError('network', `The assistant could not be fetched from ${url} (${messageOf(e)}).`, { url });
    }
    if (!res.ok) throw new AppError('http', `The assistant could not be fetched from ${url}: HTTP ${res.status}.`, { url, status: res.status });
    return res.text(); // parseBundle refuses it when it is too large
  }

  private onMessage(e: Received): void {
    if (this.gate) this.receive(e);
    else if (this.pending.length < PENDING_MAX) this.pending.push(e);
  }

  private receive(e: Received): void {
    const v = this.gate!.check(e);
    this.rejected = this.gate!.rejected;
    if (v.kind === 'rejected' || v.kind === 'ignored') return;
    this.hostOrigin = v.origin;
    if (!this.connected) {
      this.connected = true;
      if (this.bundle) this.post({ type: 'ready', assistant: this.bundle.name });
      else if (this.error) this.post({ type: 'error', id: null, ...this.error });
    }
    if (v.kind === 'invalid') return this.post({ type: 'error', id: v.id, code: v.error.code, message: v.error.message }, v.origin);
    const m = v.message;
    if (m.type === 'open') this.setOpen(true, false);
    else if (m.type === 'close') this.setOpen(false, false);
    else if (m.type === 'setTheme') this.theme = m.theme;
    else if (!this.bundle) this.post({ type: 'error', id: m.id, ...this.error! }, v.origin);
    else void this.ask(m.question, { id: m.id, origin: v.origin });
  }

  /** A message to the host, at its exact origin (never '*'). */
  private post(body: WidgetBody, origin = this.hostOrigin): void {
    if (!origin || this.win.parent === this.win) return;
    this.win.parent.postMessage(envelope<WidgetMessage>(body), origin);
  }

  /** Opens or closes the panel; `byVisitor` when it happened here (Esc, the close button), so the host hides the frame. Opening starts the download. */
  setOpen(open: boolean, byVisitor: boolean): void {
    this.open = open;
    if (open || byVisitor) this.post({ type: 'resize', open, ...(open ? WIDGET_SIZE : { width: 0, height: 0 }) });
    if (open && this.bundle) void this.ensureLoaded();
  }

  private fail(e: unknown, phase: 'invalid' | 'failed'): void {
    this.error = { code: isAppError(e) ? e.code : 'internal', message: messageOf(e) };
    this.phase = phase;
  }

  /** Loads the assistant once; a failed load can be tried again. */
  ensureLoaded(): Promise<boolean> {
    this.loading ??= this.load().then((ok) => {
      if (!ok) this.loading = null;
      return ok;
    });
    return this.loading;
  }

  private async load(): Promise<boolean> {
    const b = this.bundle!;
    this.phase = 'loading';
    this.error = null;
    try {
      const engine = (this.engine ??= new EngineState());
      const store = (this.store ??= await siteStorage(this.io));
      this.persistent = store.persistent;
      const io = { fetch: this.io.fetch, caches: store.caches, locks: store.locks };
      const target = modelTarget(b.model);
      let model = (await listDownloaded(io)).find((d) => d.base === target.base && (d.gguf ?? '') === (target.gguf ?? ''));
      const stored = !!model && store.persistent;
      if (!model) {
        this.progress = { what: 'model', loaded: 0, total: 0 };
        model = await downloadModel(io, target.base, { gguf: target.gguf, sha256: target.sha256, onProgress: (p) => (this.progress = { what: 'model', ...p }) });
      }
      this.progress = { what: 'load', loaded: 0, total: 0 };
      // The engine worker reads Cache Storage itself; a store in memory hands it the files.
      const source: CheckpointSource = store.persistent
        ? { kind: 'cache', cacheName: MODEL_CACHE, base: target.base, ...(target.gguf ? { gguf: target.gguf } : {}) }
        : { kind: 'files', files: await storedFiles(store.caches, MODEL_CACHE, target.base, model.files) };
      if (!(await engine.load(source, b.name))) {
        throw new AppError(engine.errorCode ?? 'internal', engine.error ?? 'The model could not load.');
      }
      const poolStored = b.pool ? await this.loadPool(b, engine) : true;
      await this.checkCentroid(b, engine);
      await engine.router.call('configure', {
        policy: b.routing.policy,
        thresholds: b.routing.thresholds,
        customization: b.centroid ? { centroid: new Float32Array(b.centroid), weights: { ...b.blend.weights } } : null,
        server: b.server ? { baseUrl: b.server.url } : null, // no API key: a bundle is public
      });
      this.storedHere = stored && poolStored;
      this.phase = 'ready';
      return true;
    } catch (e) {
      this.fail(e, 'failed');
      this.post({ type: 'error', id: null, ...this.error! });
      return false;
    } finally {
      this.progress = null;
    }
  }

  /** The blend's adapters into the engine, from this site's storage or downloaded once; true when nothing was downloaded. */
  private async loadPool(b: AssistantBundle, engine: EngineState): Promise<boolean> {
    const pool = b.pool!;
    this.progress = { what: 'pool', loaded: 0, total: 0 };
    const store = this.store!;
    const got = await fetchPool({ fetch: this.io.fetch, caches: store.caches }, pool, Object.keys(b.blend.weights), { onProgress: (p) => (this.progress = { what: 'pool', ...p }) });
    try {
      for (const a of got.adapters) await engine.runtime.loadAdapter(a.id, { config: a.config, weights: a.weights });
    } catch (e) {
      await forgetPool(store, pool.url); // files the engine refuses are not kept for the next visit
      throw e;
    }
    await engine.runtime.setBlend({ mode: b.blend.mode, weights: { ...b.blend.weights } });
    return got.stored && store.persistent;
  }

  /** The scope reference must be this model's feature: another model's would make every scope meaningless. */
  private async checkCentroid(b: AssistantBundle, engine: EngineState): Promise<void> {
    if (!b.centroid) return;
    const n = (await engine.runtime.embed(['']))[0].length;
    if (n !== b.centroid.length) throw new AppError('incompatible-adapter', `The assistant's scope reference has ${b.centroid.length} values, but ${b.name}'s model has features of ${n}: the bundle was made for another model.`);
  }

  /**
   * Answers a question from the widget's box, or from the host (`from`: the ask's id and the origin it came
   * from, where the answer streams back). Questions are answered one at a time, in order.
   */
  ask(question: string, from?: { id: string; origin: string }): Promise<void> {
    const run = () => this.answer(question.trim(), from);
    this.queue = this.queue.then(run, run);
    return this.queue;
  }

  private async answer(question: string, from?: { id: string; origin: string }): Promise<void> {
    const report = (e: unknown) => from && this.post({ type: 'error', id: from.id, code: isAppError(e) ? e.code : 'internal', message: messageOf(e) }, from.origin);
    if (!question) return;
    if (!(await this.ensureLoaded())) return void report(new AppError(this.error!.code, this.error!.message));
    // A host's ask stands alone (e.g. a product page's question); the visitor's own questions continue the conversation.
    const history: ChatMessage[] = from ? [] : this.turns.slice(-HISTORY_TURNS).map((t) => ({ role: t.role, content: t.content }));
    this.turns.push({ role: 'user', content: question }, { role: 'assistant', content: '' });
    const reply = this.turns[this.turns.length - 1];
    let streaming: 'device' | 'server' = 'device';
    this.busy = true;
    try {
      const a = await this.engine!.router.call('answer', { query: { messages: [...history, { role: 'user', content: question }], maxTokens: 96 } }, {
        onProgress: ({ text, route }) => {
          if (route !== streaming) (reply.content = ''), (streaming = route); // the device's draft gave way to the server
          reply.content += text;
          if (from) this.post({ type: 'answer', id: from.id, done: false, chunk: text, route }, from.origin);
        },
      });
      reply.content = a.text;
      const route: RouteTaken = { where: a.notice ? 'device' : a.decision.route, reason: WIDGET_REASONS[a.decision.reason] ?? a.decision.reason };
      reply.route = route;
      reply.notice = a.notice;
      // The plain object, not the turn's state proxy (which can't be cloned into a message).
      if (from) this.post({ type: 'answer', id: from.id, done: true, text: a.text, route }, from.origin);
    } catch (e) {
      if (!reply.content) this.turns.pop();
      if (!(e instanceof AbortError)) this.error = { code: isAppError(e) ? e.code : 'internal', message: messageOf(e) };
      report(e);
    } finally {
      this.busy = false;
    }
  }
}

function safeOrigin(s: string): string | null {
  try {
    return parseOrigin(s);
  } catch {
    return null;
  }
}
