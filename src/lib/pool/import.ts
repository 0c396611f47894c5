// Bringing adapters onto the device: PEFT adapters from the files the user
// picked (a folder or several files) or from a URL (a Hugging Face repo name,
// its page, or a `resolve` URL), each checked against the base model before
// anything is stored; and what the adapters page shows of a stored adapter.
import { AppError } from '../errors';
import type { ModelConfig } from '../engine/config';
import { parseAdapter, parseAdapterConfig } from '../engine/lora';
import type { FileSource } from '../engine/sources';
import type { StoredAdapter } from './store';

export const HF_HOST = 'https://huggingface.co';

/**
 * The file base URL of a Hugging Face repo (an adapter or a checkpoint) given as `org/name`, `org/name@rev`, a
 * Hugging Face page (`…/org/name`, `…/tree/rev[/dir]`) or a resolve URL
 * (`…/resolve/rev/[dir/]file`); any other http(s) URL is taken as a folder.
 */
export function repoBaseUrl(input: string): string {
  const s = input.trim();
  const short = /^([\w.-]+)\/([\w.-]+)(?:@([\w./-]+))?$/.exec(s);
  if (short) return `${HF_HOST}/${short[1]}/${short[2]}/resolve/${short[3] ?? 'main'}/`;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new AppError('invalid-argument', `"${s}" is neither a Hugging Face repo (org/name) nor a URL.`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new AppError('invalid-argument', 'Only http:// and https:// URLs can be imported.');
  if (u.origin === HF_HOST) {
    const [org, name, kind, rev, ...rest] = u.pathname.split('/').filter(Boolean);
    if (!org || !name) throw new AppError('invalid-argument', 'A Hugging Face URL needs the repo: https://huggingface.co/org/name');
    let dir = kind === 'tree' || kind === 'resolve' || kind === 'blob' ? rest : [];
    if (kind === 'resolve' || kind === 'blob') dir = dir.slice(0, -1); // drop the file name
    return `${HF_HOST}/${org}/${name}/resolve/${rev ?? 'main'}/${dir.map((d) => `${d}/`).join('')}`;
  }
  const path = u.pathname.endsWith('/') ? u.pathname : u.pathname.replace(/[^/]*\.(json|safetensors)$/, '') || '/';
  return `${u.origin}${path.endsWith('/') ? path : `${path}/`}`;
}

/** Reads one PEFT adapter (adapter_config.json + adapter_model.safetensors) and checks it fits the base model. */
export async function readPeftAdapter(src: FileSource, id: string, base: ModelConfig, signal?: AbortSignal): Promise<StoredAdapter> {
  const cfgBytes = await src('adapter_config.json', { signal });
  if (!cfgBytes) throw new AppError('missing-file', 'No adapter_config.json: a PEFT adapter needs adapter_config.json and adapter_model.safetensors.', { file: 'adapter_config.json' });
  let config: unknown;
  try {
    config = JSON.parse(new TextDecoder().decode(cfgBytes));
  } catch {
    throw new AppError('bad-format', 'adapter_config.json is not valid JSON.', { file: 'adapter_config.json' });
  }
  const weights = await src('adapter_model.safetensors', { signal });
  if (!weights) {
    const hint = (await src('adapter_model.bin', { signal }).catch(() => null)) ? ' (only adapter_model.bin is there: convert it to safetensors first)' : '';
    throw new AppError('missing-file', `No adapter_model.safetensors${hint}.`, { file: 'adapter_model.safetensors' });
  }
  parseAdapter(id, config, weights, base); // typed errors: module names, shapes, rank, dtype
  return { id, config, weights };
}

export interface AdapterSummary {
  id: string;
  rank: number;
  alpha: number;
  targets: string[];
  bytes: number;
}

export function summarize(a: StoredAdapter): AdapterSummary {
  const c = parseAdapterConfig(a.config, a.id);
  return { id: a.id, rank: c.r, alpha: c.loraAlpha, targets: c.targetModules, bytes: a.weights.byteLength };
}

/** A name for an imported adapter: the repo or folder it came from, made unique among `taken`. */
export function adapterId(hint: string, taken: Iterable<string>): string {
  const clean = hint.replace(/\/resolve\/.*$/, '').replace(/^https?:\/\/[^/]+\//, '').replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'adapter';
  const used = new Set(taken);
  let id = clean;
  for (let i = 2; used.has(id); i++) id = `${clean}-${i}`;
  return id;
}
