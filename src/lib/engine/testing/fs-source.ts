// Node-only: a FileSource over a folder on disk, for tests and benchmarks.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileSource } from '../sources';

export function fsSource(dir: string): FileSource {
  return async (name, opts) => {
    const p = join(dir, name);
    if (!existsSync(p)) return null;
    const bytes = new Uint8Array(readFileSync(p));
    opts.onBytes?.(bytes.byteLength, bytes.byteLength);
    return bytes;
  };
}

export function readAdapterDir(dir: string): { config: unknown; weights: Uint8Array } {
  return { config: JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))) };
}
