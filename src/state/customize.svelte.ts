// Customizing the assistant the Crayon way, on this device: the active pool's
// adapters are loaded into the engine once; the user's examples are embedded,
// compared with each adapter's indicator, and the resulting blend is set on
// the engine. A preview answers the examples with and without the blend; a
// blend can be saved as a named assistant. Nothing leaves the device.
import { messageOf } from '../lib/errors';
import calibration from '../lib/calibration.json';
import { crayonBlend, type CrayonBlend } from '../lib/pool/blend';
import { embedExamples } from '../lib/pool/customize';
import { parseExamples } from '../lib/pool/examples';
import { deleteCustomization, listCustomizations, saveCustomization, type Customization } from '../lib/pool/store';
import type { RouterCustomization } from '../lib/router/protocol';
import type { Runtime } from '../lib/runtimes/types';
import type { PoolEntry, PoolState } from './pool.svelte';
import { sha256Hex } from '../lib/sha256';

/** τ and top-k chosen on the pool tasks' validation data (npm run bench:blend, then bench:report). */
const DEFAULT_BLEND: { tau: number; topK: number } = (calibration as { blend?: { tau: number; topK: number } }).blend ?? { tau: 0.02, topK: 0 };

export class CustomizeState {
  examplesText = $state('');
  tau = $state(DEFAULT_BLEND.tau);
  topK = $state(DEFAULT_BLEND.topK);
  /** Exact delta blend Σ wᵢ·sᵢ·BᵢAᵢ (default), or LoraHub's factor blend (Σ wᵢBᵢ)(Σ wᵢAᵢ). */
  mode = $state<'delta' | 'factor'>('delta');
  result = $state<CrayonBlend | null>(null);
  active = $state(false);
  busy = $state(false);
  error = $state<string | null>(null);
  pool = $state<PoolEntry | null>(null);
  /** The saved assistant in use, if any. */
  activeName = $state<string | null>(null);
  saved = $state<Customization[]>([]);
  keepExamples = $state(false);
  preview = $state<PreviewRow[] | null>(null);
  previewBusy = $state(false);

  constructor(private readonly pools: PoolState) {}

  /** The active pool's adapters, loaded into the engine once each. */
  private async ensurePool(rt: Runtime): Promise<PoolEntry> {
    const { manifest, adapters } = await this.pools.activeFiles();
    const have = new Set(rt.info().adapters);
    for (const a of adapters) if (!have.has(a.id)) await rt.loadAdapter(a.id, { config: a.config, weights: a.weights });
    this.pool = manifest;
    return manifest;
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
      const r = crayonBlend(feats, pool.adapters, { tau: this.tau, topK: this.topK, mode: this.mode });
      this.result = r;
      await rt.setBlend(r.blend); // the plain object: state proxies can't cross postMessage
      this.active = true;
      this.activeName = null;
      this.preview = null;
    } catch (e) {
      this.error = messageOf(e);
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

  /** The engine switched models: the blend and the loaded pool belong to the old one. */
  forget(): void {
    this.active = false;
    this.activeName = null;
    this.result = null;
    this.preview = null;
  }

  async reset(rt: Runtime): Promise<void> {
    await rt.setBlend(null);
    this.active = false;
    this.activeName = null;
  }

  /**
   * Answers the user's own examples with the base model and with the blend:
   * each side's reply and its score, the mean log-probability per token of
   * the output the user gave (higher is better).
   */
  async runPreview(rt: Runtime): Promise<void> {
    if (!this.result) return;
    this.previewBusy = true;
    this.error = null;
    try {
      const blend = $state.snapshot(this.result.blend);
      const rows: PreviewRow[] = [];
      for (const ex of parseExamples(this.examplesText).slice(0, PREVIEW_MAX)) {
        const messages = [{ role: 'user' as const, content: ex.input }];
        const side = async (b: typeof blend | null) => ({
          reply: (await rt.generate({ messages, maxTokens: 16, blend: b })).text.trim(),
          score: (await rt.score({ messages }, [ex.output], { blend: b })).mean[0],
        });
        rows.push({ input: ex.input, expected: ex.output, base: await side(null), customized: await side(blend) });
        this.preview = [...rows];
      }
    } catch (e) {
      this.error = messageOf(e);
    } finally {
      this.previewBusy = false;
    }
  }

  async loadSaved(): Promise<void> {
    this.saved = (await listCustomizations(this.pools.store)).sort((a, b) => a.created.localeCompare(b.created));
  }

  /** Saves the current blend as a named assistant; the examples are kept only if the user asks. */
  async save(name: string): Promise<boolean> {
    const r = this.result ? $state.snapshot(this.result) : null;
    const trimmed = name.trim();
    if (!r || !this.pool || !trimmed) return false;
    this.error = null;
    try {
      const examples = parseExamples(this.examplesText);
      await saveCustomization(this.pools.store, {
        id: `cz-${Date.now().toString(36)}`,
        name: trimmed,
        pool: this.pool.id,
        weights: r.weights,
        mode: r.blend.mode === 'factor' ? 'factor' : 'delta',
        tau: this.tau,
        topK: this.topK,
        created: new Date().toISOString(),
        examplesHash: await sha256Hex(JSON.stringify(examples)),
        centroid: [...r.centroid],
        ...(this.keepExamples ? { examples } : {}),
      });
      this.activeName = trimmed;
      await this.loadSaved();
      return true;
    } catch (e) {
      this.error = messageOf(e);
      return false;
    }
  }

  /** Switches the chat to a saved assistant, or back to the base model (null). */
  async use(cz: Customization | null, rt: Runtime): Promise<void> {
    if (!cz) return this.reset(rt);
    this.error = null;
    try {
      await this.ensurePool(rt);
      const blend = { mode: cz.mode, weights: Object.fromEntries(Object.entries(cz.weights).filter(([, w]) => w > 0)) };
      await rt.setBlend(blend);
      this.result = { similarities: {}, weights: { ...cz.weights }, blend, centroid: new Float32Array(cz.centroid ?? []) };
      this.active = true;
      this.activeName = cz.name;
    } catch (e) {
      this.error = messageOf(e);
    }
  }

  async remove(id: string): Promise<void> {
    await deleteCustomization(this.pools.store, id);
    await this.loadSaved();
  }
}

const PREVIEW_MAX = 5;

export interface PreviewRow {
  input: string;
  expected: string;
  base: { reply: string; score: number };
  customized: { reply: string; score: number };
}
