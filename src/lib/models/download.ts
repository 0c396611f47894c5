// Downloading a checkpoint into Cache Storage, so it loads offline later:
// a Hugging Face folder (config, tokenizer, safetensors weights or shards), or
// one GGUF file, checked against its pinned sha256 once stored.
// Files stream into the cache with byte progress; a marker entry written last
// says the model is complete. Cancelling, a network failure, a checksum that
// differs or a full disk removes every file of that model, and
// `sweepIncomplete` removes what a closed tab left behind, so a broken model is
// never offered. A download holds a Web Lock named after its URL while it runs,
// so a sweep in another tab of the app leaves it alone. The downloaded models
// live in their own cache, which the service worker never touches.
import { AbortError, AppError, messageOf } from '../errors';
import type { Progress } from '../runtimes/types';
import { sha256Hex } from '../sha256';

export const MODEL_CACHE = 'crayon-models';
const MARKER = '.crayon-complete';
const REQUIRED = ['config.json', 'tokenizer.json', 'tokenizer_config.json'];
const OPTIONAL = ['generation_config.json'];

export interface DownloadIo {
  fetch: typeof fetch;
  caches: CacheStorage;
  /** navigator.locks where there is one: marks a download in progress for every tab of the app. */
  locks?: LockManager;
}

const LOCK_PREFIX = 'crayon-download:';

export interface DownloadedModel {
  base: string;
  /** A single-file GGUF model: its file name under `base`. */
  gguf?: string;
  files: string[];
  bytes: number;
  completed: string;
}

/** What to fetch: a folder checkpoint (no `gguf`), or one GGUF file checked against `sha256` when given. */
export interface DownloadOptions {
  gguf?: string;
  sha256?: string;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

const url = (base: string, file: string) => new URL(file, base).toString();

/**
 * The URL every file of a model starts with: the folder, or the GGUF file's own URL (so two GGUF files in
 * one folder are two models). Its marker, lock and deletion all go by it.
 */
export const modelKey = (base: string, gguf?: string) => (gguf ? url(base, gguf) : base);

async function get(io: DownloadIo, base: string, file: string, signal?: AbortSignal, method = 'GET'): Promise<Response | null> {
  let res: Response;
  try {
    res = await io.fetch(url(base, file), { signal, method });
  } catch (e) {
    if (signal?.aborted) throw new AbortError();
    throw new AppError('network', `Could not reach ${url(base, file)} (${messageOf(e)}).`, { file });
  }
  if (res.status === 404 || (res.ok && (res.headers.get('content-type') ?? '').startsWith('text/html'))) return null;
  if (!res.ok) throw new AppError('http', `Downloading ${file} failed: HTTP ${res.status}.`, { file, status: res.status });
  return res;
}

/** Which files make up the checkpoint: the GGUF file; or config, tokenizer, and the weights (one file, or the shards its index names). */
async function fileList(io: DownloadIo, base: string, gguf: string | undefined, signal?: AbortSignal): Promise<{ files: string[]; index: Response | null }> {
  if (gguf) return { files: [gguf], index: null };
  const index = await get(io, base, 'model.safetensors.index.json', signal);
  if (index) {
    const body = (await index.clone().json()) as { weight_map?: Record<string, string> };
    const shards = [...new Set(Object.values(body.weight_map ?? {}))];
    if (shards.length === 0) throw new AppError('bad-format', 'model.safetensors.index.json names no shards.');
    return { files: [...REQUIRED, ...shards], index };
  }
  return { files: [...REQUIRED, 'model.safetensors'], index: null };
}

/** Downloads every file of the checkpoint at `base` (or its one GGUF file) into the model cache; on any failure nothing of it stays. */
export async function downloadModel(io: DownloadIo, base: string, opts: DownloadOptions = {}): Promise<DownloadedModel> {
  if (!io.locks) return download(io, base, opts);
  try {
    // Another tab downloading the same checkpoint goes first; this one waits (and can be cancelled while it waits).
    return await io.locks.request(LOCK_PREFIX + modelKey(base, opts.gguf), { signal: opts.signal }, () => download(io, base, opts));
  } catch (e) {
    if (opts.signal?.aborted) throw new AbortError();
    throw e;
  }
}

async function download(io: DownloadIo, base: string, opts: DownloadOptions): Promise<DownloadedModel> {
  const { signal, gguf } = opts;
  const cache = await io.caches.open(MODEL_CACHE);
  const marker = modelKey(base, gguf) + MARKER;
  const stored: string[] = [];
  try {
    const { files, index } = await fileList(io, base, gguf, signal);
    // Sizes first (HEAD), so progress has a total; 0 where the server doesn't say.
    const sizes = await Promise.all(files.map(async (f) => Number((await get(io, base, f, signal, 'HEAD'))?.headers.get('content-length') ?? 0)));
    const total = sizes.reduce((a, b) => a + b, 0);
    let done = 0;
    if (index) {
      await cache.put(url(base, 'model.safetensors.index.json'), index);
      stored.push('model.safetensors.index.json');
    }
    const optional = gguf ? [] : await Promise.all(OPTIONAL.map(async (f) => [f, await get(io, base, f, signal).catch(() => null)] as const));
    for (const [f, res] of optional) if (res) (await cache.put(url(base, f), res), stored.push(f));
    for (const file of files) {
      const res = await get(io, base, file, signal);
      if (!res) throw new AppError('missing-file', `The checkpoint has no ${file} at ${base}.`, { file });
      const before = done;
      const counted = res.body!.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, ctl) {
            done += chunk.byteLength;
            opts.onProgress?.({ loaded: done, total, file });
            ctl.enqueue(chunk);
          },
        }),
      );
      const headers = new Headers(res.headers);
      stored.push(file);
      await cache.put(url(base, file), new Response(counted, { headers }));
      const expected = Number(res.headers.get('content-length') ?? 0);
      if (expected && done - before !== expected) throw new AppError('truncated', `${file} arrived incomplete (${done - before} of ${expected} bytes).`, { file });
    }
    if (gguf && opts.sha256) await verify(cache, url(base, gguf), gguf, opts.sha256);
    const record: DownloadedModel = { base, ...(gguf ? { gguf } : {}), files: [...stored], bytes: done, completed: new Date().toISOString() };
    await cache.put(marker, new Response(JSON.stringify(record), { headers: { 'content-type': 'application/json' } }));
    return record;
  } catch (e) {
    await Promise.all(stored.map((f) => cache.delete(url(base, f))));
    await cache.delete(marker);
    if (signal?.aborted) throw new AbortError();
    if ((e as { name?: string })?.name === 'QuotaExceededError') throw new AppError('quota-exceeded', 'Storage on this device is full, so the model was not saved (nothing of it was kept). Free some space and try again.');
    if (e instanceof AppError) throw e;
    throw new AppError('network', `The download was interrupted (${messageOf(e)}); nothing of it was kept.`);
  }
}

/** Checks the stored file (what a later load will read) against its pinned sha256. */
async function verify(cache: Cache, fileUrl: string, file: string, sha256: string): Promise<void> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new AppError('backend-unavailable', `${file} can't be checked here (no crypto.subtle: open the app over https or on localhost), so it was not kept.`, { file });
  const res = await cache.match(fileUrl);
  if (!res) throw new AppError('storage-error', `${file} was not found in storage right after it was saved.`, { file });
  const actual = await sha256Hex(await res.arrayBuffer(), subtle);
  if (actual !== sha256.toLowerCase()) {
    throw new AppError('checksum-mismatch', `${file} is not the pinned file (sha256 ${actual.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…); nothing of it was kept.`, { file, expected: sha256, actual });
  }
}

/** The complete models in the cache. */
export async function listDownloaded(io: Pick<DownloadIo, 'caches'>): Promise<DownloadedModel[]> {
  const cache = await io.caches.open(MODEL_CACHE);
  const out: DownloadedModel[] = [];
  for (const req of await cache.keys()) {
    if (!req.url.endsWith(MARKER)) continue;
    const res = await cache.match(req);
    if (res) out.push((await res.json()) as DownloadedModel);
  }
  return out;
}

/** Removes every file of the model at `base` (or only its GGUF file and marker, with `gguf`). */
export async function deleteModel(io: Pick<DownloadIo, 'caches'>, base: string, gguf?: string): Promise<void> {
  const cache = await io.caches.open(MODEL_CACHE);
  const key = modelKey(base, gguf);
  for (const req of await cache.keys()) if (req.url.startsWith(key)) await cache.delete(req);
}

/**
 * Removes files of models that never completed (a tab closed mid-download). Returns how many were removed.
 * With `locks`, a download running in any tab of the app (it holds its lock) is left alone; without, run it
 * at start-up only, as such a download would lose its files too.
 */
export async function sweepIncomplete(io: Pick<DownloadIo, 'caches' | 'locks'>): Promise<number> {
  const cache = await io.caches.open(MODEL_CACHE);
  const keys = await cache.keys();
  const complete = new Set(keys.filter((k) => k.url.endsWith(MARKER)).map((k) => k.url.slice(0, -MARKER.length)));
  const running = io.locks ? ((await io.locks.query()).held ?? []).map((l) => l.name ?? '').filter((n) => n.startsWith(LOCK_PREFIX)).map((n) => n.slice(LOCK_PREFIX.length)) : [];
  let removed = 0;
  for (const k of keys) {
    if (k.url.endsWith(MARKER) || [...complete, ...running].some((b) => k.url.startsWith(b))) continue;
    await cache.delete(k);
    removed++;
  }
  return removed;
}
