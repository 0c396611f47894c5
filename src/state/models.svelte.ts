// Models on this device: the bundled reference model, and catalog or custom
// checkpoints downloaded into Cache Storage with progress and cancel; any of
// them can be loaded into the engine, and downloaded ones deleted.
import { AbortError, messageOf } from '../lib/errors';
import { repoBaseUrl } from '../lib/pool/import';
import { CATALOG, customEntry, type CatalogEntry } from '../lib/models/catalog';
import { deleteModel, downloadModel, listDownloaded, MODEL_CACHE, sweepIncomplete, type DownloadedModel } from '../lib/models/download';
import type { Progress } from '../lib/runtimes/types';
import type { EngineState } from './engine.svelte';

export interface ModelRow extends CatalogEntry {
  downloaded: DownloadedModel | null;
  progress: Progress | null;
  error: string | null;
}

export class ModelsState {
  rows = $state<ModelRow[]>(CATALOG.map((c) => ({ ...c, downloaded: null, progress: null, error: null })));
  /** Which model the engine runs: 'bundled' or a row id. */
  inUse = $state<string>('bundled');
  notice = $state<string | null>(null);
  /** The start-up sweep of unfinished downloads and the first listing are done. */
  ready = $state(false);
  private readonly controllers = new Map<string, AbortController>();

  /** `onSwitch` runs after the engine switched models (a blend made for the old one no longer applies). */
  constructor(
    private readonly engine: EngineState,
    private readonly onSwitch: () => void = () => {},
  ) {}

  async init(): Promise<void> {
    if (!globalThis.caches) return;
    const removed = await sweepIncomplete({ caches, locks: navigator.locks });
    if (removed) this.notice = `Removed ${removed} file(s) of a download that did not finish.`;
    await this.refresh();
    this.ready = true;
  }

  async refresh(): Promise<void> {
    const done = await listDownloaded({ caches });
    for (const d of done) if (!this.rows.some((r) => r.base === d.base)) this.rows.push({ ...customEntry(d.base), downloaded: null, progress: null, error: null });
    for (const r of this.rows) r.downloaded = done.find((d) => d.base === r.base) ?? null;
  }

  /** Adds a checkpoint by URL or Hugging Face repo (org/name) to the list. */
  add(input: string): string | null {
    try {
      const entry = customEntry(repoBaseUrl(input));
      if (!this.rows.some((r) => r.id === entry.id)) this.rows.push({ ...entry, downloaded: null, progress: null, error: null });
      return null;
    } catch (e) {
      return messageOf(e);
    }
  }

  async download(id: string): Promise<void> {
    const row = this.rows.find((r) => r.id === id);
    if (!row || this.controllers.has(id)) return;
    const ac = new AbortController();
    this.controllers.set(id, ac);
    row.error = null;
    row.progress = { loaded: 0, total: row.approxBytes };
    try {
      row.downloaded = await downloadModel({ fetch: fetch.bind(globalThis), caches, locks: navigator.locks }, row.base, { signal: ac.signal, onProgress: (p) => (row.progress = p) });
    } catch (e) {
      row.error = e instanceof AbortError ? 'Download cancelled; nothing of it was kept.' : messageOf(e);
    } finally {
      row.progress = null;
      this.controllers.delete(id);
    }
  }

  cancel(id: string): void {
    this.controllers.get(id)?.abort();
  }

  async remove(id: string): Promise<void> {
    const row = this.rows.find((r) => r.id === id);
    if (!row) return;
    if (this.inUse === id) await this.useBundled();
    await deleteModel({ caches }, row.base);
    row.downloaded = null;
  }

  async use(id: string): Promise<void> {
    const row = this.rows.find((r) => r.id === id);
    if (!row?.downloaded) return;
    const ok = await this.engine.load({ kind: 'cache', cacheName: MODEL_CACHE, base: row.base }, row.name);
    this.onSwitch();
    if (ok) this.inUse = id;
  }

  async useBundled(): Promise<void> {
    const ok = await this.engine.loadBundled();
    this.onSwitch();
    if (ok) this.inUse = 'bundled';
  }
}
