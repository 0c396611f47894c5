// The catalog: the real model's entry is built from real-model.json alone
// (one home for its repo, revision, file, size and checksum), first in the
// list; a host override moves every entry to a local copy of the same layout.
import { describe, expect, it } from 'vitest';
import pins from './real-model.json';
import { catalog, CATALOG, customEntry, REAL_MODEL_ID, realModelEntry } from './catalog';

describe('catalog', () => {
  it("downloads the real model's GGUF from its pinned Hugging Face revision, with its size and sha256", () => {
    const e = realModelEntry();
    expect(e.base + e.gguf).toBe(`https://huggingface.co/${pins.hub.repo}/resolve/${pins.hub.revision}/${pins.gguf.file}`);
    expect(e).toMatchObject({ id: REAL_MODEL_ID, approxBytes: pins.gguf.bytes, sha256: pins.gguf.sha256 });
    expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(CATALOG[0]).toEqual(e);
  });

  it('keeps the safetensors checkpoints as folders without a GGUF file', () => {
    const rest = CATALOG.slice(1);
    expect(rest.map((r) => r.id)).toEqual(['smollm2-135m-instruct', 'smollm2-360m-instruct', 'qwen2.5-0.5b-instruct']);
    for (const r of rest) {
      expect(r.gguf).toBeUndefined();
      expect(r.base).toMatch(/^https:\/\/huggingface\.co\/[\w.-]+\/[\w.-]+\/resolve\/main\/$/);
    }
  });

  it('serves every entry from another host with the same URL layout when asked', () => {
    const local = catalog('http://127.0.0.1:9999/');
    expect(local[0].base).toBe(`http://127.0.0.1:9999/${pins.hub.repo}/resolve/${pins.hub.revision}/`);
    expect(local.every((e) => e.base.startsWith('http://127.0.0.1:9999/'))).toBe(true);
    expect(local.map((e) => e.id)).toEqual(CATALOG.map((e) => e.id));
  });

  it('gives a GGUF file by URL its own id, apart from its folder', () => {
    const folder = customEntry('https://example.com/models/');
    const file = customEntry('https://example.com/models/', undefined, 'x.Q8_0.gguf');
    expect(file).toMatchObject({ base: 'https://example.com/models/', gguf: 'x.Q8_0.gguf', name: 'https://example.com/models/x.Q8_0.gguf' });
    expect(file.id).not.toBe(folder.id);
    expect(folder.gguf).toBeUndefined();
  });
});
