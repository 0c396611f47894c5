// The GGUF exports run in llama.cpp (node-llama-cpp, CPU): the server model
// with and without one of its LoRA adapters reproduces PyTorch's greedy
// continuation of a fixture prompt, and llama.cpp's tokenizer gives the same
// ids as ours.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';
import { worldDir } from './world-dir';

const world = worldDir();
const fixture = JSON.parse(readFileSync(`${world}/fixtures/gguf.json`, 'utf8')) as {
  text: string;
  ids: number[];
  adapter: string;
  greedy: number[];
  greedyWithAdapter: number[];
  chatTemplateProbe: string;
};

let llama: Llama;
let model: LlamaModel;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  model = await llama.loadModel({ modelPath: `${world}/server/model.gguf` });
});
afterAll(async () => {
  await model?.dispose();
  await llama?.dispose();
});

async function greedy(adapterPath: string | null, n: number): Promise<number[]> {
  const context = await model.createContext({
    contextSize: 128,
    threads: 1,
    ...(adapterPath ? { lora: { adapters: [{ filePath: adapterPath, scale: 1 }] } } : {}),
  });
  try {
    const sequence = context.getSequence();
    const out: number[] = [];
    // llama.cpp stops at the end token, as the fixture does
    for await (const token of sequence.evaluate(fixture.ids as never, { temperature: 0 })) {
      if (out.length >= n) break;
      out.push(token as unknown as number);
    }
    return out;
  } finally {
    await context.dispose();
  }
}

describe('GGUF exports in llama.cpp', () => {
  it("tokenizes the fixture prompt exactly as the world's tokenizer does", () => {
    expect(Array.from(model.tokenize(fixture.text, true) as unknown as number[])).toEqual(fixture.ids);
  });

  it("matches PyTorch's greedy continuation with no adapter", async () => {
    expect(await greedy(null, 8)).toEqual(fixture.greedy);
  });

  it("matches PyTorch's greedy continuation with a pool adapter at scale 1 (which differs from the base's)", async () => {
    expect(await greedy(`${world}/server-pool/${fixture.adapter}/adapter.gguf`, 8)).toEqual(fixture.greedyWithAdapter);
  });
});
