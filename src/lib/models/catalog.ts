// The models a person can download besides the bundled reference model:
// the real model (SmolLM2-135M-Instruct as one Q4_1 GGUF file, pinned in
// real-model.json and checked by sha256 after download), and Hugging Face
// checkpoints in safetensors (Llama and Qwen2 families), all fetched from
// their `resolve` URLs. Sizes are for display before the download starts;
// the download itself reports real bytes.
import { HF_HOST } from '../pool/import';
import pins from './real-model.json';

export interface CatalogEntry {
  id: string;
  name: string;
  /** Folder URL of the checkpoint's files, ending in '/'. */
  base: string;
  /** Approximate download size in bytes (0 = unknown). */
  approxBytes: number;
  note?: string;
  /** A single-file GGUF checkpoint: its file name under `base` (then nothing else is fetched). */
  gguf?: string;
  /** The GGUF file's sha256 (hex), checked after download. */
  sha256?: string;
}

/** The real model's id: the default at start-up once it is stored. */
export const REAL_MODEL_ID = pins.id;

/** The real model's file at `<host>/<repo>/resolve/<revision>/<file>`, as real-model.json pins it. */
export function realModelEntry(host: string = HF_HOST): CatalogEntry {
  return {
    id: pins.id,
    name: pins.name,
    base: `${host.replace(/\/+$/, '')}/${pins.hub.repo}/resolve/${pins.hub.revision}/`,
    gguf: pins.gguf.file,
    sha256: pins.gguf.sha256,
    approxBytes: pins.gguf.bytes,
    note: 'Llama family, 4-bit GGUF, one file',
  };
}

/**
 * The catalog, the real model first. `host` replaces https://huggingface.co for
 * every entry: the e2e tests serve a local copy of the same URL layout.
 */
export function catalog(host: string = HF_HOST): CatalogEntry[] {
  const hf = (repo: string) => `${host.replace(/\/+$/, '')}/${repo}/resolve/main/`;
  return [
    realModelEntry(host),
    { id: 'smollm2-135m-instruct', name: 'SmolLM2 135M Instruct', base: hf('HuggingFaceTB/SmolLM2-135M-Instruct'), approxBytes: 270e6, note: 'Llama family, bf16' },
    { id: 'smollm2-360m-instruct', name: 'SmolLM2 360M Instruct', base: hf('HuggingFaceTB/SmolLM2-360M-Instruct'), approxBytes: 725e6, note: 'Llama family, bf16' },
    { id: 'qwen2.5-0.5b-instruct', name: 'Qwen2.5 0.5B Instruct', base: hf('Qwen/Qwen2.5-0.5B-Instruct'), approxBytes: 990e6, note: 'Qwen2 family, bf16' },
  ];
}

export const CATALOG: CatalogEntry[] = catalog();

/**
 * An entry for a checkpoint the user names by URL or Hugging Face repo: a
 * folder (`base`), or one GGUF file when `gguf` names it.
 */
export function customEntry(base: string, name?: string, gguf?: string): CatalogEntry {
  const clean = base.endsWith('/') ? base : `${base}/`;
  const where = gguf ? `${clean}${gguf}` : clean;
  const id = `url-${where.replace(/^https?:\/\//, '').replace(/[^\w.-]+/g, '-').replace(/-+$/, '')}`;
  return { id, name: name ?? where, base: clean, approxBytes: 0, ...(gguf ? { gguf } : {}) };
}
