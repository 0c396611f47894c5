// Reads a checkpoint, either a Hugging Face folder (config.json,
// model.safetensors or its shards, tokenizer files) or one GGUF file, from a
// URL base (Hugging Face `resolve` URLs work), from File objects, or from
// Cache Storage, with byte progress and abort. The I/O (fetch, Cache) is
// passed in.
import { AppError } from '../errors';
import type { Progress } from '../runtimes/types';
import { parseConfig } from './config';
import type { Checkpoint } from './engine';
import { ggufCheckpoint } from './gguf-checkpoint';
import { parseSafetensors, safetensorsTensors } from './safetensors';
import { Tokenizer } from './tokenizer';
import type { FileSource, ReadOptions } from './sources';

async function json(src: FileSource, name: string, opts: ReadOptions, required: boolean): Promise<unknown> {
  // An optional file that can't be fetched (offline, with the app's precache holding only the files
  // that exist) counts as absent; a required one fails below with its own clear error.
  const bytes = await src(name, opts).catch((e) => {
    if (!required && e instanceof AppError && e.code === 'network') return null;
    throw e;
  });
  if (!bytes) {
    if (required) throw new AppError('missing-file', `The checkpoint has no ${name}.`, { file: name });
    return null;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new AppError('bad-format', `${name} is not valid JSON.`, { file: name });
  }
}

export interface LoadCheckpointOptions {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  requireTokenizer?: boolean;
  /** The name of a GGUF file to read instead of a Hugging Face folder: it holds config, tokenizer and weights. */
  gguf?: string;
}

/** Reads config, tokenizer and weights (one GGUF file, or safetensors as one file or shards) into a Checkpoint. */
export async function loadCheckpoint(src: FileSource, opts: LoadCheckpointOptions = {}): Promise<Checkpoint> {
  if (opts.gguf) {
    const name = opts.gguf;
    const bytes = await src(name, { signal: opts.signal, onBytes: (loaded, total) => opts.onProgress?.({ loaded, total, file: name }) });
    if (!bytes) throw new AppError('missing-file', `There is no ${name} to load.`, { file: name });
    const ckpt = ggufCheckpoint(bytes, name);
    opts.onProgress?.({ loaded: bytes.byteLength, total: bytes.byteLength });
    return ckpt;
  }
  let done = 0;
  const read = (file: string): ReadOptions => ({
    signal: opts.signal,
    onBytes: (loaded, total) => opts.onProgress?.({ loaded: done + loaded, total: 0, file }),
  });
  const step = async <T>(file: string, f: (o: ReadOptions) => Promise<T>) => {
    const before = done;
    const out = await f(read(file));
    done = before + (out instanceof Uint8Array ? out.byteLength : 0);
    return out;
  };
  const config = parseConfig(await json(src, 'config.json', read('config.json'), true));
  const tokJson = await json(src, 'tokenizer.json', read('tokenizer.json'), opts.requireTokenizer !== false);
  const tokenizer = tokJson ? new Tokenizer(tokJson, await json(src, 'tokenizer_config.json', read('tokenizer_config.json'), false)) : null;
  const index = (await json(src, 'model.safetensors.index.json', read('model.safetensors.index.json'), false)) as { weight_map?: Record<string, string> } | null;
  const names = index?.weight_map ? [...new Set(Object.values(index.weight_map))].sort() : ['model.safetensors'];
  const files = [];
  for (const name of names) {
    const bytes = await step(name, (o) => src(name, o));
    if (!bytes) throw new AppError('missing-file', `The checkpoint has no ${name}.`, { file: name });
    files.push(parseSafetensors(bytes, name));
  }
  opts.onProgress?.({ loaded: done, total: done });
  return { config, tokenizer, tensors: safetensorsTensors(files) };
}
