// Customizing the assistant the Crayon way, on this device: the bundled pool's
// adapters are loaded into the engine once; the user's examples are embedded,
// compared with each adapter's indicator, and the resulting blend is set on
// the engine. Nothing leaves the device.
import calibration from '../lib/calibration.json';
import { crayonBlend, type CrayonBlend } from '../lib/pool/blend';
import { embedExamples } from '../lib/pool/customize';
import { parseExamples } from '../lib/pool/examples';
import type { RouterCustomization } from '../lib/router/protocol';
import type { Runtime } from '../lib/runtimes/types';

export const BUNDLED_POOL_BASE = 'world/device-pool/';

/** τ and top-k chosen on the pool tasks' validation data (npm run bench:blend, then bench:report). */
const DEFAULT_BLEND: { tau: number; topK: number } = (calibration as { blend?: { tau: number; topK: number } }).blend ?? { tau: 0.02, topK: 0 };

interface PoolJson {
  id: string;
  adapters: { id: string; path: string; indicator: number[]; topTasks?: { task: string }[] }[];
}

export class CustomizeState {
  examplesText = $state('');
  tau = $state(DEFAULT_BLEND.tau);
  topK = $state(DEFAULT_BLEND.topK);
  result = $state<CrayonBlend | null>(null);
  active = $state(false);
  busy = $state(false);
  error = $state<string | null>(null);
  pool = $state<PoolJson | null>(null);
  private loaded = false;

  private async ensurePool(rt: Runtime): Promise<PoolJson> {
    if (this.pool && this.loaded) return this.pool;
    const base = new URL(BUNDLED_POOL_BASE, location.href);
    const pool = (await (await fetch(new URL('pool.json', base))).json()) as PoolJson;
    const have = new Set(rt.info().adapters);
    for (const a of pool.adapters) {
      if (have.has(a.id)) continue;
      const dir = new URL(`${a.path}/`, base);
      const config = await (await fetch(new URL('adapter_config.json', dir))).json();
      const weights = new Uint8Array(await (await fetch(new URL('adapter_model.safetensors', dir))).arrayBuffer());
      await rt.loadAdapter(a.id, { config, weights });
    }
    this.pool = pool;
    this.loaded = true;
    return pool;
  }

  /** Examples -> features -> similarities and weights -> the engine's blend. */
  async compute(rt: Runtime): Promise<void> {
    this.error = null;
    this.busy = true;
    try {
      const examples = parseExamples(this.examplesText);
      if (examples.length === 0) throw new Error('Give at least one example, one per line as "input => output".');
      const pool = await this.ensurePool(rt);
      const feats = await embedExamples(rt, examples);
      const r = crayonBlend(feats, pool.adapters, { tau: this.tau, topK: this.topK });
      this.result = r;
      await rt.setBlend(r.blend); // the plain object: state proxies can't cross postMessage
      this.active = true;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.busy = false;
    }
  }

  /** What the router gets: the scope centroid and the weights, as plain values (never the examples). */
  routerCustomization(): RouterCustomization | null {
    if (!this.active || !this.result) return null;
    const r = $state.snapshot(this.result);
    return { centroid: new Float32Array(r.centroid), weights: { ...r.weights } };
  }

  async reset(rt: Runtime): Promise<void> {
    await rt.setBlend(null);
    this.active = false;
  }
}
