// Tests and benchmarks only (Node): the reference world's device pool and a
// saved assistant over it, in a store over a Map: what the structural fuzz and
// the store's tests start from.
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../engine/config';
import { worldDir } from '../../../../training/world-dir';
import { memoryStore } from './memory-store';
import type { FuzzInput } from './fuzz';

/** The reference world's device pool and a saved assistant over it: the store the fuzz starts from. */
export function worldFuzzInput(world = worldDir()): FuzzInput {
  const base = parseConfig(JSON.parse(readFileSync(`${world}/device/config.json`, 'utf8')));
  const manifest = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8'));
  const adapters = manifest.adapters.map((a: { id: string; path: string }) => ({
    id: a.id,
    config: JSON.parse(readFileSync(`${world}/device-pool/${a.path}/adapter_config.json`, 'utf8')),
    weights: new Uint8Array(readFileSync(`${world}/device-pool/${a.path}/adapter_model.safetensors`)),
  }));
  const customization = { id: 'cz-kept', name: 'Kept', pool: manifest.id, weights: { [manifest.adapters[0].id]: 0.7, [manifest.adapters[1].id]: 0.3 }, mode: 'delta' as const, tau: 0.1, topK: 0, created: '2026-12-01T00:00:00.000Z', examplesHash: 'h', centroid: manifest.adapters[0].indicator };
  return { base, manifest, adapters, customization, store: (data) => memoryStore(data) };
}

