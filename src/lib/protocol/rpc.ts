// Typed request/response messaging between the page and a worker (or any two
// ends of a MessagePort). Each message kind ties its params, result and
// progress types together through a MethodMap; requests carry ids, can be
// cancelled, may stream progress (loading bytes, tokens), and errors arrive
// rebuilt as typed AppErrors. Bad messages are answered, never fatal.
import { AbortError, AppError, fromSerialized, serializeError, type SerializedError } from '../errors';

/** A protocol: for each kind, what it takes, what it returns, what it streams. */
export type MethodMap = Record<string, { params: unknown; result: unknown; progress?: unknown }>;

export type Request<M extends MethodMap> = {
  [K in keyof M & string]: { type: 'request'; id: number; kind: K; params: M[K]['params'] };
}[keyof M & string];

export type Message =
  | { type: 'request'; id: number; kind: string; params: unknown }
  | { type: 'cancel'; id: number }
  | { type: 'progress'; id: number; progress: unknown }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: SerializedError };

/** What both a Worker and a worker's global scope (and a MessagePort) provide. */
export interface Endpoint {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}

export interface CallOptions<P> {
  signal?: AbortSignal;
  onProgress?: (progress: P) => void;
  transfer?: Transferable[];
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: unknown): void;
  onProgress?: (progress: unknown) => void;
  cleanup(): void;
}

/** The calling side. One client per endpoint. */
export class RpcClient<M extends MethodMap> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listener = (event: MessageEvent) => this.receive(event.data as Message);

  constructor(private readonly endpoint: Endpoint) {
    endpoint.addEventListener('message', this.listener);
  }

  call<K extends keyof M & string>(kind: K, params: M[K]['params'], options: CallOptions<M[K]['progress']> = {}): Promise<M[K]['result']> {
    const { signal, onProgress, transfer } = options;
    if (signal?.aborted) return Promise.reject(new AbortError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.endpoint.postMessage({ type: 'cancel', id } satisfies Message);
        this.settle(id)?.reject(new AbortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: resolve as (r: unknown) => void,
        reject,
        onProgress: onProgress as ((p: unknown) => void) | undefined,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
      this.endpoint.postMessage({ type: 'request', id, kind, params } satisfies Message, transfer ?? []);
    });
  }

  /** Rejects every call in flight (e.g. the worker died) and stops listening. */
  close(reason: AppError = new AppError('internal', 'The worker stopped.')): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(reason);
    this.endpoint.removeEventListener('message', this.listener);
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    p.cleanup();
    return p;
  }

  private receive(msg: Message): void {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'progress') this.pending.get(msg.id)?.onProgress?.(msg.progress);
    else if (msg.type === 'result') this.settle(msg.id)?.resolve(msg.result);
    else if (msg.type === 'error') this.settle(msg.id)?.reject(fromSerialized(msg.error));
  }
}

export interface HandlerContext<P> {
  signal: AbortSignal;
  progress(progress: P): void;
}

/** A handler may return `{result, transfer}` through this wrapper to move buffers. */
export class Transfer<T> {
  constructor(
    readonly value: T,
    readonly transfer: Transferable[],
  ) {}
}

export type Handlers<M extends MethodMap> = {
  [K in keyof M & string]: (params: M[K]['params'], ctx: HandlerContext<M[K]['progress']>) => Promise<M[K]['result'] | Transfer<M[K]['result']>>;
};

/**
 * The serving side: answers requests with the handlers, one AbortController
 * per request (a 'cancel' message aborts it). Returns a function that stops.
 */
export function serve<M extends MethodMap>(endpoint: Endpoint, handlers: Handlers<M>): () => void {
  const running = new Map<number, AbortController>();
  const post = (msg: Message, transfer: Transferable[] = []) => endpoint.postMessage(msg, transfer);

  const listener = async (event: MessageEvent) => {
    const msg = event.data as Message;
    if (!msg || typeof msg !== 'object' || typeof msg.id !== 'number') return; // not ours: ignore
    if (msg.type === 'cancel') {
      running.get(msg.id)?.abort();
      return;
    }
    if (msg.type !== 'request') return;
    const handler = Object.prototype.hasOwnProperty.call(handlers, msg.kind) ? handlers[msg.kind as keyof M & string] : undefined;
    if (!handler) {
      post({ type: 'error', id: msg.id, error: new AppError('invalid-argument', `Unknown request kind "${String(msg.kind)}".`).toJSON() });
      return;
    }
    const controller = new AbortController();
    running.set(msg.id, controller);
    try {
      const ctx = { signal: controller.signal, progress: (progress: unknown) => post({ type: 'progress', id: msg.id, progress }) };
      const out = await handler(msg.params as never, ctx as never);
      if (out instanceof Transfer) post({ type: 'result', id: msg.id, result: out.value }, out.transfer);
      else post({ type: 'result', id: msg.id, result: out });
    } catch (e) {
      post({ type: 'error', id: msg.id, error: controller.signal.aborted ? new AbortError().toJSON() : serializeError(e) });
    } finally {
      running.delete(msg.id);
    }
  };
  endpoint.addEventListener('message', listener);
  return () => {
    endpoint.removeEventListener('message', listener);
    for (const c of running.values()) c.abort();
  };
}
