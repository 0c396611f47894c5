// The models a person can download besides the bundled reference model:
// Hugging Face checkpoints the engine runs (Llama and Qwen2 families, in
// safetensors), fetched from their `resolve` URLs. Sizes are for display
// before the download starts; the download itself reports real bytes.
import { HF_HOST } from '../pool/import';

export interface CatalogEntry {
  id: string;
  name: string;
  /** Folder URL of the checkpoint's files, ending in '/'. */
  base: string;
  /** Approximate download size in bytes (0 = unknown). */
  approxBytes: number;
  note?: string;
}

const hf = (repo: string) => `${HF_HOST}/${repo}/resolve/main/`;

export const CATALOG: CatalogEntry[] = [
  { id: 'smollm2-135m-instruct', name: 'SmolLM2 135M Instruct', base: hf('HuggingFaceTB/SmolLM2-135M-Instruct'), approxBytes: 270e6, note: 'Llama family, bf16' },
  { id: 'smollm2-360m-instruct', name: 'SmolLM2 360M Instruct', base: hf('HuggingFaceTB/SmolLM2-360M-Instruct'), approxBytes: 725e6, note: 'Llama family, bf16' },
  { id: 'qwen2.5-0.5b-instruct', name: 'Qwen2.5 0.5B Instruct', base: hf('Qwen/Qwen2.5-0.5B-Instruct'), approxBytes: 990e6, note: 'Qwen2 family, bf16' },
];

/** An entry for a checkpoint the user names by URL or Hugging Face repo. */
export function customEntry(base: string, name?: string): CatalogEntry {
  const clean = base.endsWith('/') ? base : `${base}/`;
  const id = `url-${clean.replace(/^https?:\/\//, '').replace(/[^\w.-]+/g, '-').replace(/-+$/, '')}`;
  return { id, name: name ?? clean, base: clean, approxBytes: 0 };
}
