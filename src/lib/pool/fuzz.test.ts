// 1,200 mutated or truncated adapter files and configs, from a fixed seed:
// every one is rejected with a typed AppError (never a TypeError or a crash),
// and a pool import that fails leaves the store exactly as it was.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { AppError } from '../errors';
import { parseConfig } from '../engine/config';
import { parseAdapter } from '../engine/lora';
import { rng } from '../engine/sampler';
import { worldDir } from '../../../training/world-dir';
import { exportPool, parsePoolFile, savePool } from './store';
import { memoryStore } from './testing/memory-store';

const world = worldDir();
const base = parseConfig(JSON.parse(readFileSync(`${world}/device/config.json`, 'utf8')));
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8'));
const id = pool.adapters[0].id as string;
const weights = new Uint8Array(readFileSync(`${world}/device-pool/${id}/adapter_model.safetensors`));
const config = JSON.parse(readFileSync(`${world}/device-pool/${id}/adapter_config.json`, 'utf8'));

function mutateBytes(r: () => number, bytes: Uint8Array): Uint8Array {
  const kind = Math.floor(r() * 4);
  if (kind === 0) return bytes.slice(0, Math.floor(r() * bytes.length)); // truncated
  const out = bytes.slice();
  const headerLen = Number(new DataView(out.buffer).getBigUint64(0, true));
  const n = 1 + Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    // mostly the header (where structure lives), sometimes anywhere
    const at = kind === 1 ? Math.floor(r() * Math.min(out.length, 8 + headerLen)) : kind === 2 ? Math.floor(r() * 8) : Math.floor(r() * out.length);
    out[at] = Math.floor(r() * 256);
  }
  return out;
}

function mutateConfig(r: () => number): unknown {
  const c = structuredClone(config) as Record<string, unknown>;
  const keys = ['r', 'lora_alpha', 'target_modules', 'peft_type', 'use_rslora'];
  const k = keys[Math.floor(r() * keys.length)];
  const values = [null, -1, 0, 3, 16, 1e9, 'x', [], ['c_attn'], ['q_proj', 'bogus'], NaN, {}, 'IA3', true];
  c[k] = values[Math.floor(r() * values.length)];
  if (r() < 0.1) return r() < 0.5 ? null : 'not an object';
  return c;
}

describe('fuzzing adapter import', () => {
  it('rejects 1,200 mutated files and configs with typed errors and leaves the store unchanged', async () => {
    const r = rng(20261122);
    const data = new Map<IDBValidKey, unknown>();
    const store = memoryStore(data);
    let rejected = 0;
    let accepted = 0;
    const file = exportPool({ ...pool, adapters: [pool.adapters[0]] }, [{ id, config, weights }]);
    for (let i = 0; i < 1200; i++) {
      const which = i % 3;
      try {
        if (which === 0) parseAdapter('fuzz', config, mutateBytes(r, weights), base);
        else if (which === 1) parseAdapter('fuzz', mutateConfig(r), weights, base);
        else {
          const parsed = parsePoolFile(mutateBytes(r, file));
          await savePool(store, parsed.manifest, parsed.adapters, base);
        }
        accepted++; // a mutation that changed only tensor values is still a valid adapter
      } catch (e) {
        if (!(e instanceof AppError)) throw new Error(`case ${i}: untyped ${String(e)}`);
        expect(e.message.length).toBeGreaterThan(10);
        rejected++;
      }
      if (which === 2 && data.size > 0) {
        // only a pool file that still parses and validates may land, and then whole
        expect(data.has(`pool:${pool.id}`)).toBe(true);
        data.clear();
      }
    }
    expect(rejected + accepted).toBe(1200);
    expect(rejected).toBeGreaterThan(800);
  });
});
