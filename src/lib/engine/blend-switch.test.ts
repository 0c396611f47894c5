// Blends switched back and forth on one engine (CPU, reference device model):
// each plan must leave nothing behind that changes the next one. A factor plan
// used to resize the delta plan's scratch buffer, so the same delta blend after
// a factor one read past its end and scored NaN.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldDir } from '../../../training/world-dir';
import type { Blend } from './lora';
import { CrayonEngine } from './engine';
import { loadCheckpoint } from './loader';
import { fsSource, readAdapterDir } from './testing/fs-source';

const world = worldDir();
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: { id: string; path: string }[] };
const ids = pool.adapters.map((a) => a.id);
let e: CrayonEngine;
beforeAll(async () => {
  e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend: 'cpu', contextLength: 64 });
  for (const a of pool.adapters) await e.loadAdapter(a.id, readAdapterDir(`${world}/device-pool/${a.path}`));
});

const prompt = { messages: [{ role: 'user' as const, content: 'What is 2 plus 3?' }] };
const score = async (blend: Blend | null) => (await e.score(prompt, ['5<|end|>', '6<|end|>'], { blend })).sum;
const weights = Object.fromEntries(ids.map((id, i) => [id, (i + 1) / 36]));

describe('switching blends', () => {
  it('scores a delta blend the same before and after factor, merged and smaller blends of the same adapters', async () => {
    const delta: Blend = { mode: 'delta', weights };
    const first = await score(delta);
    for (const x of first) expect(Number.isFinite(x)).toBe(true);
    await score({ mode: 'factor', weights });
    expect(await score(delta)).toEqual(first);
    await score({ mode: 'delta', weights: { [ids[0]]: 1 } });
    await score({ mode: 'factor', weights: { [ids[1]]: 0.5, [ids[2]]: 0.5 } });
    expect(await score(delta)).toEqual(first);
    await e.setBlend({ mode: 'merged', weights });
    const merged = await score(undefined as never); // the session's (merged) blend
    await e.setBlend(null);
    merged.forEach((x, i) => expect(x).toBeCloseTo(first[i], 4));
    // Unmerging subtracts what merging added, in f32: the weights come back to within rounding.
    (await score(delta)).forEach((x, i) => expect(Math.abs(x - first[i])).toBeLessThan(1e-5));
    // ...and the base model is untouched by all of it.
    const base = await score(null);
    expect(Math.abs(base[0] - first[0])).toBeGreaterThan(1e-3);
    await score({ mode: 'factor', weights });
    expect(await score(null)).toEqual(base);
  });
});

describe('the embedder feature under a session blend', () => {
  // Crayon's feature is defined with no adapter. A merged blend changes layer 0's q_proj in place, and the
  // feature used to be read from it: the router compared merged-weight queries with unmerged examples.
  it('is the base model\'s whatever the blend, merged included', async () => {
    const texts = ['What is 2 plus 3?', 'Is the word "calm" positive?'];
    const plain = await e.embed(texts);
    for (const blend of [{ mode: 'delta', weights }, { mode: 'factor', weights }, { mode: 'merged', weights }] as Blend[]) {
      await e.setBlend(blend);
      expect(await e.embed(texts)).toEqual(plain);
    }
    await e.setBlend(null);
    expect(await e.embed(texts)).toEqual(plain);
  });
});

describe('blend changes interleaved with requests', () => {
  // A session blend set while a request ran used to apply at once (the rest of that request ran under it),
  // and the request's cleanup then put back the blend it had started with: after setBlend(B) the engine ran
  // with no blend at all. Changes now wait in the request queue.
  it('a setBlend during a request with its own blend leaves that request alone and holds after it', async () => {
    const a: Blend = { mode: 'delta', weights: { [ids[0]]: 1 } };
    const b: Blend = { mode: 'delta', weights: { [ids[1]]: 0.5, [ids[2]]: 0.5 } };
    const req = { ...prompt, maxTokens: 6, temperature: 0, ignoreEos: true, blend: a };
    const tokenIds = e.tokenizer.encode(e.tokenizer.chat(prompt.messages));
    await e.setBlend(b);
    const underB = await e.logitsFor(tokenIds);
    await e.setBlend(null);
    const base = await e.logitsFor(tokenIds);
    const alone = await e.generate(req);

    let change: Promise<void> | null = null;
    const during = await e.generate(req, { onToken: () => void (change ??= e.setBlend(b)) });
    await change;
    expect(change).not.toBeNull();
    expect(during.logprobs).toEqual(alone.logprobs);
    expect(await e.logitsFor(tokenIds)).toEqual(underB);
    expect(underB).not.toEqual(base);
    await e.setBlend(null);
  });

  it('an adapter removed during a request is removed only after it', async () => {
    const id = ids[3];
    const req = { ...prompt, maxTokens: 6, temperature: 0, ignoreEos: true, blend: { mode: 'delta', weights: { [id]: 1 } } as Blend };
    const alone = await e.generate(req);
    let removal: Promise<void> | null = null;
    const during = await e.generate(req, { onToken: () => void (removal ??= e.removeAdapter(id)) });
    await removal;
    expect(during.logprobs).toEqual(alone.logprobs);
    await expect(e.generate(req)).rejects.toMatchObject({ code: 'not-loaded' });
    await e.loadAdapter(id, readAdapterDir(`${world}/device-pool/${pool.adapters[3].path}`));
  });
});
