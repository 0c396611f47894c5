// Models on this device: the bundled reference model, the real model and
// other catalog or custom checkpoints downloaded into Cache Storage with
// progress and cancel, and a model opened from files. Any of them can be
// loaded into the engine; the one in use is remembered, and at start-up it
// (or else the real model, once stored) loads again, falling back to the
// bundled model with a notice when it can't.
import { createStore, get, set, type UseStore } from 'idb-keyval';
import { AbortError, messageOf } from '../lib/errors';
import { repoBaseUrl } from '../lib/pool/import';
import { catalog, customEntry, REAL_MODEL_ID, type CatalogEntry } from '../lib/models/catalog';
import { deleteModel, downloadModel, listDownloaded, MODEL_CACHE, sweepIncomplete, type DownloadedModel } from '../lib/models/download';
import type { Progress } from '../lib/runtimes/types';
import type { EngineState } from './engine.svelte';

declare global {
  /**
   * Replaces https://huggingface.co in the catalog's URLs. Only the e2e tests
   * define it (an init script, before the app starts) to serve a local copy of
   * the same URL layout; nothing in the app sets it.
   */
  // eslint-disable-next-line no-var
  var crayonCatalogHost: string | undefined;
}

export interface ModelRow extends CatalogEntry {
  downloaded: DownloadedModel | null;
  progress: Progress | null;
  error: string | null;
}

/** The model in use: the bundled one, a row's id, or files the user opened (not remembered: files can't be reopened). */
export type InUse = 'bundled' | 'file' | (string & {});

const CHOICE = 'in-use';
const row = (e: CatalogEntry): ModelRow => ({ ...e, downloaded: null, progress: null, error: null });
const sameModel = (r: { base: string; gguf?: string }, d: { base: string; gguf?: string }) => r.base === d.base && (r.gguf ?? '') === (d.gguf ?? '');

export class ModelsState {
  rows = $state<ModelRow[]>(catalog(globalThis.crayonCatalogHost).map(row));
  inUse = $state<InUse>('bundled');
  /** The name of the model opened from files, while it is in use. */
  fileName = $state<string | null>(null);
  notice = $state<string | null>(null);
  /** Said at start-up when the remembered model could not load and the bundled one took its place. */
  fallback = $state<string | null>(null);
  /** The stored models have been listed once (until then, which are downloaded is unknown). */
  listed = $state(false);
  /** The start-up sweep of unfinished downloads and the first listing are done. */
  ready = $state(false);
  /** Why the last "Open a model file" failed: the engine's typed error. */
  fileError = $state<{ code: string; message: string } | null>(null);
  private readonly controllers = new Map<string, AbortController>();

  /** `onSwitch` runs after the engine switched models (a blend made for the old one no longer applies). */
  constructor(
    private readonly engine: EngineState,
    private readonly onSwitch: () => void = () => {},
    private readonly store: UseStore = createStore('crayon-model-choice', 'kv'),
  ) {}

  /** The real model's row (first in the catalog). */
  get real(): ModelRow {
    return this.rows.find((r) => r.id === REAL_MODEL_ID)!;
  }

  /**
   * Loads the model to start with: the one in use last time if it is still stored, else the real model if it
   * is stored, else the bundled one (also when the chosen one fails to load, with a notice).
   */
  async start(): Promise<void> {
    const remembered = await get<string>(CHOICE, this.store).catch(() => undefined);
    if (globalThis.caches) await this.refresh().catch(() => undefined);
    const stored = (id?: string) => this.rows.find((r) => r.id === id && r.downloaded);
    const pick = remembered === 'bundled' ? undefined : (stored(remembered) ?? stored(REAL_MODEL_ID));
    if (pick) {
      if (await this.use(pick.id, { remember: false })) return;
      const why = (this.engine.error ?? 'unknown error').replace(/\.$/, '');
      this.fallback = `${pick.name} could not load (${why}), so the reference model is in use. On the Models page you can delete it and download it again.`;
    }
    await this.useBundled({ remember: false });
  }

  /** Removes what unfinished downloads left, and lists the stored models. */
  async init(): Promise<void> {
    if (!globalThis.caches) return;
    const removed = await sweepIncomplete({ caches, locks: navigator.locks });
    if (removed) this.notice = `Removed ${removed} file(s) of a download that did not finish.`;
    await this.refresh();
    this.ready = true;
  }

  async refresh(): Promise<void> {
    const done = await listDownloaded({ caches });
    for (const d of done) if (!this.rows.some((r) => sameModel(r, d))) this.rows.push(row(customEntry(d.base, undefined, d.gguf)));
    for (const r of this.rows) r.downloaded = done.find((d) => sameModel(r, d)) ?? null;
    this.listed = true;
  }

  /** Adds a checkpoint by URL or Hugging Face repo (org/name), or one GGUF file by URL, to the list. */
  add(input: string): string | null {
    try {
      const file = /^(https?:\/\/.+\/)([^/?#]+\.gguf)(?:[?#].*)?$/i.exec(input.trim().replace(/^(https:\/\/huggingface\.co\/[^/]+\/[^/]+)\/blob\//, '$1/resolve/'));
      const entry = file ? customEntry(file[1], undefined, file[2]) : customEntry(repoBaseUrl(input));
      if (!this.rows.some((r) => r.id === entry.id)) this.rows.push(row(entry));
      return null;
    } catch (e) {
      return messageOf(e);
    }
  }

  async download(id: string): Promise<void> {
    const r = this.rows.find((x) => x.id === id);
    if (!r || this.controllers.has(id)) return;
    const ac = new AbortController();
    this.controllers.set(id, ac);
    r.error = null;
    r.progress = { loaded: 0, total: r.approxBytes };
    try {
      r.downloaded = await downloadModel({ fetch: fetch.bind(globalThis), caches, locks: navigator.locks }, r.base, {
        gguf: r.gguf,
        sha256: r.sha256,
        signal: ac.signal,
        onProgress: (p) => (r.progress = p),
      });
    } catch (e) {
      r.error = e instanceof AbortError ? 'Download cancelled; nothing of it was kept.' : messageOf(e);
    } finally {
      r.progress = null;
      this.controllers.delete(id);
    }
  }

  /** The one click: downloads the model, then runs it. */
  async downloadAndUse(id: string): Promise<void> {
    await this.download(id);
    if (this.rows.find((r) => r.id === id)?.downloaded) await this.use(id);
  }

  cancel(id: string): void {
    this.controllers.get(id)?.abort();
  }

  async remove(id: string): Promise<void> {
    const r = this.rows.find((x) => x.id === id);
    if (!r) return;
    if (this.inUse === id) await this.useBundled();
    await deleteModel({ caches }, r.base, r.gguf);
    r.downloaded = null;
  }

  /** Runs a stored model; true when it is ready. It is remembered for the next start unless told otherwise. */
  async use(id: string, { remember = true } = {}): Promise<boolean> {
    const r = this.rows.find((x) => x.id === id);
    if (!r?.downloaded) return false;
    const ok = await this.engine.load({ kind: 'cache', cacheName: MODEL_CACHE, base: r.base, ...(r.gguf ? { gguf: r.gguf } : {}) }, r.name);
    return this.switched(ok, id, remember);
  }

  async useBundled({ remember = true } = {}): Promise<boolean> {
    return this.switched(await this.engine.loadBundled(), 'bundled', remember);
  }

  /**
   * Runs a model from files the user picked: one `.gguf` file, or a Hugging Face folder's files (config.json,
   * model.safetensors or its shards, tokenizer files). A failure leaves the model in use as it was when the
   * engine still holds it; the error is on `engine.error`.
   */
  async openFiles(files: File[]): Promise<boolean> {
    if (files.length === 0) return false;
    const gguf = files.find((f) => f.name.toLowerCase().endsWith('.gguf'));
    const folder = files[0].webkitRelativePath?.split('/')[0];
    const name = gguf ? gguf.name.replace(/\.gguf$/i, '') : folder || files.map((f) => f.name).join(', ');
    this.fileError = null;
    const ok = await this.engine.load({ kind: 'files', files }, name);
    if (ok) this.fileName = name;
    else this.fileError = { code: this.engine.errorCode ?? 'internal', message: this.engine.error ?? 'The model could not load.' };
    return this.switched(ok, 'file', false);
  }

  private async switched(ok: boolean, id: InUse, remember: boolean): Promise<boolean> {
    if (!ok) {
      if (this.engine.status !== 'ready') this.onSwitch(); // the engine lost the model it had
      return false;
    }
    this.onSwitch();
    this.inUse = id;
    if (id !== 'file') this.fileName = null;
    if (this.fallback && id !== 'bundled') this.fallback = null;
    if (remember) await set(CHOICE, id, this.store).catch(() => undefined); // not remembered: the default next time
    return true;
  }
}
