// Where a checkpoint's or an adapter's files come from: a URL base (Hugging
// Face `resolve` URLs work), File objects the user picked, or Cache Storage;
// each read with byte progress and abort. Kept apart from the loader so the
// page can read adapter files without pulling in the tokenizer library.
import { AbortError, AppError, messageOf, throwIfAborted } from '../errors';

export interface ReadOptions {
  signal?: AbortSignal;
  /** Called with bytes read so far and the file's size (0 if unknown). */
  onBytes?: (loaded: number, total: number) => void;
}

/** Reads one file by name; null when it doesn't exist. */
export type FileSource = (name: string, opts: ReadOptions) => Promise<Uint8Array | null>;

async function readBody(res: Response, name: string, opts: ReadOptions): Promise<Uint8Array> {
  const total = Number(res.headers.get('content-length') ?? 0);
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  try {
    for (;;) {
      throwIfAborted(opts.signal);
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      opts.onBytes?.(loaded, total);
    }
  } catch (e) {
    if (e instanceof AbortError || opts.signal?.aborted) throw new AbortError();
    throw new AppError('network', `Downloading ${name} was interrupted (${messageOf(e)}).`, { file: name });
  }
  if (total && loaded !== total) throw new AppError('truncated', `${name} arrived incomplete (${loaded} of ${total} bytes).`, { file: name });
  const out = new Uint8Array(loaded);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.byteLength;
  }
  return out;
}

/** Files under a URL base, e.g. https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/ */
export function urlSource(base: string, fetchFn: typeof fetch): FileSource {
  const root = base.endsWith('/') ? base : `${base}/`;
  return async (name, opts) => {
    let res: Response;
    try {
      res = await fetchFn(new URL(name, root).toString(), { signal: opts.signal });
    } catch (e) {
      if (opts.signal?.aborted) throw new AbortError();
      throw new AppError('network', `Could not download ${name} from ${root} (${messageOf(e)}).`, { file: name });
    }
    // A static host's single-page-app fallback answers a missing file with the
    // app's index.html and a 200: for a model file that is "not found".
    if (res.status === 404 || (res.ok && (res.headers.get('content-type') ?? '').startsWith('text/html'))) return null;
    if (!res.ok) throw new AppError('http', `Downloading ${name} failed: HTTP ${res.status}.`, { file: name, status: res.status });
    return readBody(res, name, opts);
  };
}

/** Files the user picked (a folder's files or several files), matched by name. */
export function filesSource(files: Iterable<{ name: string; arrayBuffer(): Promise<ArrayBuffer> }>): FileSource {
  const byName = new Map<string, { name: string; arrayBuffer(): Promise<ArrayBuffer> }>();
  for (const f of files) byName.set(f.name.split('/').pop()!, f);
  return async (name, opts) => {
    const f = byName.get(name);
    if (!f) return null;
    throwIfAborted(opts.signal);
    const bytes = new Uint8Array(await f.arrayBuffer());
    opts.onBytes?.(bytes.byteLength, bytes.byteLength);
    return bytes;
  };
}

/** Files stored in Cache Storage under `base` + name. */
export function cacheSource(cache: Cache, base: string): FileSource {
  const root = base.endsWith('/') ? base : `${base}/`;
  return async (name, opts) => {
    const res = await cache.match(new URL(name, root).toString());
    return res ? readBody(res, name, opts) : null;
  };
}
