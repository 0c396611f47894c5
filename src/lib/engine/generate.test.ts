// Generation on the CPU engine in Node with the reference device model: the
// behaviours a caller relies on besides parity (which parity.test.ts covers).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldDir } from '../../../training/world-dir';
import { isAppError } from '../errors';
import { CrayonEngine } from './engine';
import { loadCheckpoint } from './loader';
import { fsSource } from './testing/fs-source';
import { Tokenizer } from './tokenizer';

const world = worldDir();
let e: CrayonEngine;
beforeAll(async () => {
  e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend: 'cpu', contextLength: 64 });
});
const ask = [{ role: 'user' as const, content: 'What is the capital of Zorvia?' }];

describe('generation', () => {
  it('decodes an empty reply (a model that ends at once) as empty text', () => {
    const tok = new Tokenizer(JSON.parse(readFileSync(`${world}/tokenizer/tokenizer.json`, 'utf8')), JSON.parse(readFileSync(`${world}/tokenizer/tokenizer_config.json`, 'utf8')));
    expect(tok.decode([])).toBe('');
  });

  it('repeats a sampled reply for the same seed, and reports one log-probability per token', async () => {
    const a = await e.generate({ messages: ask, maxTokens: 12, temperature: 1, seed: 5, ignoreEos: true });
    const b = await e.generate({ messages: ask, maxTokens: 12, temperature: 1, seed: 5, ignoreEos: true });
    expect(b.text).toBe(a.text);
    expect(a.tokens).toHaveLength(12);
    expect(a.logprobs).toHaveLength(12);
    for (const lp of a.logprobs) expect(lp).toBeLessThanOrEqual(0);
  });

  it('ends at a stop string and leaves it out', async () => {
    const full = await e.generate({ messages: ask, maxTokens: 12, ignoreEos: true });
    const stop = full.text.slice(2, 4);
    const r = await e.generate({ messages: ask, maxTokens: 12, ignoreEos: true, stop: [stop] });
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it('refuses a prompt that would overflow the context with a typed error', async () => {
    const long = [{ role: 'user' as const, content: 'word '.repeat(80) }];
    const err = await e.generate({ messages: long, maxTokens: 8 }).catch((x) => x);
    expect(isAppError(err) && err.code).toBe('context-overflow');
  });
});
