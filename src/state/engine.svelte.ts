// The on-device model as app state: owns the engine worker and the router
// worker (connected to the engine by a MessageChannel), loads a checkpoint
// (the bundled reference model, a stored one, files), and exposes loading
// progress, readiness and a failed load's typed error.
import { isAppError, type ErrorCode } from '../lib/errors';
import { RpcClient } from '../lib/protocol/rpc';
import type { RouterProtocol } from '../lib/router/protocol';
import type { CheckpointSource } from '../lib/runtimes/engine-protocol';
import type { Progress, RuntimeInfo } from '../lib/runtimes/types';
import { WorkerRuntime } from '../lib/runtimes/worker-runtime';

export type EngineStatus = 'idle' | 'loading' | 'ready' | 'error';

/** The reference device model shipped with the app (see vite.config.ts). */
export const BUNDLED_MODEL_BASE = 'world/device/';

export class EngineState {
  status = $state<EngineStatus>('idle');
  progress = $state<Progress | null>(null);
  info = $state<RuntimeInfo | null>(null);
  error = $state<string | null>(null);
  /** The failed load's error code (e.g. 'truncated', 'unsupported-dtype'). */
  errorCode = $state<ErrorCode | null>(null);
  /** Milliseconds from start to ready, for the record. */
  loadMs = $state<number | null>(null);
  readonly runtime: WorkerRuntime;
  readonly worker: Worker;
  /** The router worker: answers chat queries on the device or the server. */
  readonly router: RpcClient<RouterProtocol>;

  constructor() {
    this.worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module' });
    this.runtime = new WorkerRuntime(this.worker);
    const routerWorker = new Worker(new URL('../../workers/router.worker.ts', import.meta.url), { type: 'module' });
    const channel = new MessageChannel();
    this.worker.postMessage({ connect: channel.port1 }, [channel.port1]);
    routerWorker.postMessage({ engine: channel.port2 }, [channel.port2]);
    this.router = new RpcClient<RouterProtocol>(routerWorker);
  }

  /** The model in the engine, by name. */
  modelName = $state('the reference model');

  loadBundled(): Promise<boolean> {
    return this.load({ kind: 'url', base: new URL(BUNDLED_MODEL_BASE, location.href).toString() }, 'the reference model');
  }

  /**
   * Loads a checkpoint into the engine worker; true when it is ready. When the
   * load fails before the engine let go of the model it had (a bad or truncated
   * file is found while reading), that model stays ready, and the error is kept
   * on `error` and `errorCode` all the same.
   */
  async load(source: CheckpointSource, name: string): Promise<boolean> {
    const t0 = performance.now();
    const had = this.status === 'ready';
    this.status = 'loading';
    this.error = null;
    this.errorCode = null;
    this.progress = null;
    try {
      this.info = await this.runtime.load(source, { onProgress: (p) => (this.progress = p) });
      this.status = 'ready';
      this.modelName = name;
      this.loadMs = Math.round(performance.now() - t0);
      return true;
    } catch (e) {
      this.error = isAppError(e) ? e.message : String(e);
      this.errorCode = isAppError(e) ? e.code : 'internal';
      this.status = had && (await this.stillLoaded()) ? 'ready' : 'error';
      return false;
    }
  }

  /** Whether the worker still holds a model: any call but 'not-loaded' says so (rendering no messages is the cheapest). */
  private async stillLoaded(): Promise<boolean> {
    try {
      await this.runtime.renderChat([], false);
      return true;
    } catch (e) {
      return !isAppError(e, 'not-loaded');
    }
  }
}
