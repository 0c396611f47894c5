// The GGUF reader on small files written here: what it reads, and the typed
// error for each way a file can be wrong. The real file and bit-exactness
// against the gguf package are checked in real-model.test.ts.
import { describe, expect, it } from 'vitest';
import { ggufConfig, ggufTokenizerFiles, unpermuteRows } from './gguf-checkpoint';
import { parseGguf } from './gguf';
import { dequantize, GGML } from './quants';
import { writeGguf } from './testing/gguf-writer';
import { thrown } from '../testing/thrown';

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);
const llamaMeta = {
  'general.architecture': 'llama',
  'llama.embedding_length': 8,
  'llama.feed_forward_length': 16,
  'llama.block_count': 1,
  'llama.attention.head_count': 2,
  'llama.attention.head_count_kv': 1,
  'llama.attention.layer_norm_rms_epsilon': 1e-5,
  'llama.context_length': 64,
  'llama.rope.freq_base': 10000,
  'tokenizer.ggml.model': 'gpt2',
  'tokenizer.ggml.tokens': ['a', 'b', 'ab', '<|end|>'],
  'tokenizer.ggml.token_type': [1, 1, 1, 3],
  'tokenizer.ggml.merges': ['a b'],
  'tokenizer.ggml.eos_token_id': 3,
};

describe('GGUF reader', () => {
  it('reads metadata and tensors, with GGUF dims (innermost first) turned into a row-major shape', () => {
    const bytes = writeGguf({ 'general.architecture': 'llama', 'x.list': [1, 2, 3] }, [{ name: 't', dims: [3, 2], type: GGML.F32, data: f32(1, 2, 3, 4, 5, 6) }]);
    const f = parseGguf(bytes, 't.gguf');
    expect(f.version).toBe(3);
    expect(f.metadata.get('x.list')).toEqual([1, 2, 3]);
    const t = f.tensors.get('t')!;
    expect(t.shape).toEqual([2, 3]);
    expect([...dequantize(t.type, f.data.subarray(t.begin, t.end), 6)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('turns the config metadata into the engine config, tied when the file has no output tensor', () => {
    const cfg = ggufConfig(parseGguf(writeGguf(llamaMeta, [])));
    expect(cfg).toMatchObject({ architecture: 'LlamaForCausalLM', dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 4, vocabSize: 4, maxSeqLen: 64, tiedEmbeddings: true, eosTokenIds: [3] });
    const untied = ggufConfig(parseGguf(writeGguf(llamaMeta, [{ name: 'output.weight', dims: [8, 4], type: GGML.F32, data: new Uint8Array(128) }])));
    expect(untied.tiedEmbeddings).toBe(false);
  });

  it('builds a byte-level BPE tokenizer with the control tokens as special added tokens', () => {
    const { tokenizer, config } = ggufTokenizerFiles(parseGguf(writeGguf(llamaMeta, [])));
    const t = tokenizer as { added_tokens: { id: number; special: boolean }[]; model: { vocab: Record<string, number>; merges: string[] } };
    expect(t.added_tokens).toEqual([expect.objectContaining({ id: 3, content: '<|end|>', special: true })]);
    expect(t.model.vocab).toEqual({ a: 0, b: 1, ab: 2, '<|end|>': 3 });
    expect(t.model.merges).toEqual(['a b']);
    expect(config).toMatchObject({ eos_token: '<|end|>', add_bos_token: false });
  });

  it('undoes llama.cpp\'s q/k row permutation exactly', () => {
    // llama.cpp's converter: w.reshape(heads, 2, half, in).swapaxes(1, 2): HF row s*half + i goes to 2i + s.
    const heads = 2, headDim = 6, rowLen = 3, half = headDim / 2;
    const hf = Float32Array.from({ length: heads * headDim * rowLen }, (_, i) => i);
    const permuted = new Float32Array(hf.length);
    for (let h = 0; h < heads; h++)
      for (let s = 0; s < 2; s++)
        for (let i = 0; i < half; i++) permuted.set(hf.subarray((h * headDim + s * half + i) * rowLen, (h * headDim + s * half + i + 1) * rowLen), (h * headDim + 2 * i + s) * rowLen);
    expect([...unpermuteRows(permuted, heads, rowLen)]).toEqual([...hf]);
  });

  describe('typed errors', () => {
    const good = writeGguf(llamaMeta, [{ name: 'token_embd.weight', dims: [8, 4], type: GGML.F32, data: new Uint8Array(128) }]);

    it('a file that is not GGUF, or of version 1', () => {
      expect(thrown(() => parseGguf(f32(1, 2, 3), 'x.gguf'))).toMatchObject({ code: 'bad-format', message: expect.stringContaining('not a GGUF file') });
      const v1 = good.slice();
      v1[4] = 1;
      expect(thrown(() => parseGguf(v1, 'old.gguf'))).toMatchObject({ code: 'bad-format', message: expect.stringContaining('version 1') });
    });

    it('a file cut inside its header, or inside its tensor data', () => {
      expect(thrown(() => parseGguf(good.subarray(0, 200), 'cut.gguf'))).toMatchObject({ code: 'truncated', message: expect.stringContaining('ends inside its header') });
      expect(thrown(() => parseGguf(good.subarray(0, good.byteLength - 1), 'cut.gguf'))).toMatchObject({ code: 'truncated', message: expect.stringContaining('"token_embd.weight" extends past the end') });
    });

    it('a tensor of a type the engine does not read, named with its type', () => {
      const q5 = writeGguf(llamaMeta, [{ name: 'blk.0.attn_q.weight', dims: [32, 1], type: 6, data: new Uint8Array(22) }]);
      expect(thrown(() => parseGguf(q5, 'q5.gguf'))).toMatchObject({ code: 'unsupported-dtype', message: expect.stringMatching(/"blk\.0\.attn_q\.weight" is Q5_0/) });
    });

    it('quantized rows that are not whole blocks', () => {
      const odd = writeGguf(llamaMeta, [{ name: 'w', dims: [16, 2], type: GGML.Q8_0, data: new Uint8Array(34) }]);
      expect(thrown(() => parseGguf(odd))).toMatchObject({ code: 'bad-format', message: expect.stringContaining('not a whole number of Q8_0 blocks') });
    });

    it('an architecture, RoPE scaling or tokenizer the engine does not run', () => {
      expect(thrown(() => ggufConfig(parseGguf(writeGguf({ ...llamaMeta, 'general.architecture': 'gemma3' }, []))))).toMatchObject({ code: 'unsupported-architecture', message: expect.stringContaining('"gemma3"') });
      expect(thrown(() => ggufConfig(parseGguf(writeGguf({ ...llamaMeta, 'llama.rope.scaling.type': 'linear' }, []))))).toMatchObject({ code: 'unsupported-architecture', message: expect.stringContaining('RoPE scaling') });
      expect(thrown(() => ggufTokenizerFiles(parseGguf(writeGguf({ ...llamaMeta, 'tokenizer.ggml.model': 'llama' }, []))))).toMatchObject({ code: 'unsupported-architecture', message: expect.stringContaining('"llama" tokenizer') });
      expect(thrown(() => ggufConfig(parseGguf(writeGguf({ ...llamaMeta, 'llama.block_count': 'two' }, []))))).toMatchObject({ code: 'bad-format', message: expect.stringContaining('"llama.block_count" should be a number') });
    });
  });
});
