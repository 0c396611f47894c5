// The multiply-add counts against the shapes the loader checks and the tensors
// an adapter file holds, and by hand for the reference device model.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { worldDir } from '../../../training/world-dir';
import { expectedShapes, parseConfig } from './config';
import { adapterMacs, decodeMacs } from './cost';
import { parseAdapter } from './lora';
import { parseSafetensors } from './safetensors';
import { readAdapterDir } from './testing/fs-source';

const world = worldDir();
const cfgOf = (dir: string) => parseConfig(JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')));
const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

describe('decodeMacs', () => {
  it.each(['device', 'fixtures/tiny-llama', 'fixtures/tiny-qwen2'])('%s: at position -1 (no attention) it is the element count of every matrix the token goes through', (dir) => {
    const cfg = cfgOf(`${world}/${dir}`);
    let matrices = 0;
    for (const [name, shape] of expectedShapes(cfg)) if (/_proj\.weight$/.test(name)) matrices += product(shape);
    matrices += cfg.vocabSize * cfg.dim; // the logits, through the head (or the tied embedding)
    expect(decodeMacs(cfg, -1)).toBe(matrices);
  });

  it('adds 2 · heads · head_dim per layer for each cached position', () => {
    const cfg = cfgOf(`${world}/device`);
    expect(decodeMacs(cfg, 100) - decodeMacs(cfg, 0)).toBe(cfg.nLayers * 2 * cfg.nHeads * cfg.headDim * 100);
  });

  it('counts the device model by hand: 4 layers of 184,320 plus a 1,024 × 128 head', () => {
    // q 128·128, k and v 64·128, o 128·128, gate and up 352·128, down 128·352
    const layer = 128 * 128 * 2 + 64 * 128 * 2 + 352 * 128 * 3;
    expect(layer).toBe(184_320);
    expect(decodeMacs(cfgOf(`${world}/device`), -1)).toBe(4 * layer + 1024 * 128);
  });
});

describe('adapterMacs', () => {
  const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: { id: string; path: string }[] };
  it('is the element count of every A and B tensor in the adapter file', () => {
    const cfg = cfgOf(`${world}/device`);
    for (const { id, path } of pool.adapters) {
      const files = readAdapterDir(`${world}/device-pool/${path}`);
      const elements = [...parseSafetensors(files.weights).tensors.values()].reduce((n, t) => n + product(t.shape), 0);
      expect(adapterMacs(parseAdapter(id, files.config, files.weights, cfg))).toBe(elements);
    }
  });
});
