// The on-device model as app state: owns the engine worker and the router
// worker (connected to the engine by a MessageChannel), loads the bundled
// reference model at start, and exposes loading progress and readiness.
import { isAppError } from '../lib/errors';
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

  /** Loads a checkpoint into the engine worker; true when it is ready. */
  async load(source: CheckpointSource, name: string): Promise<boolean> {
    const t0 = performance.now();
    this.status = 'loading';
    this.error = null;
    this.progress = null;
    try {
      this.info = await this.runtime.load(source, { onProgress: (p) => (this.progress = p) });
      this.status = 'ready';
      this.modelName = name;
      this.loadMs = Math.round(performance.now() - t0);
      return true;
    } catch (e) {
      this.status = 'error';
      this.error = isAppError(e) ? e.message : String(e);
      return false;
    }
  }
}
