// Bad checkpoint files are typed errors that say what is wrong.
import { describe, expect, it } from 'vitest';
import { worldDir } from '../../../training/world-dir';
import { AppError, isAppError } from '../errors';
import { CrayonEngine } from './engine';
import { loadCheckpoint } from './loader';
import type { FileSource } from './sources';
import { fsSource } from './testing/fs-source';
import { parseConfig } from './config';
import { parseAdapter } from './lora';
import { parseSafetensors, readTensor, writeSafetensors } from './safetensors';

const good = writeSafetensors({ a: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }, b: { shape: [1], data: new Float32Array([7]) } });

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (!isAppError(e)) throw e;
    return e.code;
  }
  return undefined;
}

function withHeader(header: object, dataBytes = 0): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

describe('safetensors reader', () => {
  it('reads back what was written, f32', () => {
    const f = parseSafetensors(good);
    expect(Array.from(readTensor(f, 'a'))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(f.tensors.get('a')?.shape).toEqual([2, 3]);
  });

  it('decodes f16 and bf16', () => {
    const f16 = withHeader({ x: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, 4);
    const view = new DataView(f16.buffer, f16.byteLength - 4);
    view.setUint16(0, 0x3c00, true); // 1.0
    view.setUint16(2, 0xc000, true); // -2.0
    expect(Array.from(readTensor(parseSafetensors(f16), 'x'))).toEqual([1, -2]);
    const bf16 = withHeader({ x: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, 2);
    new DataView(bf16.buffer, bf16.byteLength - 2).setUint16(0, 0x3fc0, true); // 1.5
    expect(Array.from(readTensor(parseSafetensors(bf16), 'x'))).toEqual([1.5]);
  });

  it('rejects truncated files, bad headers, bad dtypes, wrong sizes and overlaps with typed errors', () => {
    expect(codeOf(() => parseSafetensors(good.subarray(0, 5)))).toBe('truncated');
    expect(codeOf(() => parseSafetensors(good.subarray(0, good.length - 4)))).toBe('truncated');
    expect(codeOf(() => parseSafetensors(withHeader({ a: 1 })))).toBe('bad-format');
    const notJson = withHeader({});
    notJson[8] = 0x7b + 1;
    expect(codeOf(() => parseSafetensors(notJson))).toBe('bad-format');
    expect(codeOf(() => parseSafetensors(withHeader({ a: { dtype: 'I8', shape: [1], data_offsets: [0, 1] } }, 1)))).toBe('unsupported-dtype');
    expect(codeOf(() => parseSafetensors(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4)))).toBe('bad-format');
    expect(codeOf(() => parseSafetensors(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8)))).toBe('bad-format');
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(codeOf(() => parseSafetensors(huge))).toBe('bad-format');
  });
});

describe('model config', () => {
  const llama = { architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100, max_position_embeddings: 128 };

  it('reads a Llama config with Hugging Face\'s defaults (untied embeddings unless it says tied)', () => {
    const c = parseConfig(llama);
    expect(c).toMatchObject({ dim: 64, headDim: 16, nKvHeads: 2, tiedEmbeddings: false, attnBias: false, ropeTheta: 10000 });
    expect(parseConfig({ ...llama, tie_word_embeddings: true }).tiedEmbeddings).toBe(true);
    expect(parseConfig({ ...llama, architectures: ['Qwen2ForCausalLM'] }).tiedEmbeddings).toBe(false);
  });

  it('names the architecture it cannot run', () => {
    expect(() => parseConfig({ ...llama, architectures: ['MistralForCausalLM'] })).toThrow(/MistralForCausalLM/);
    expect(codeOf(() => parseConfig({ ...llama, architectures: ['GPT2LMHeadModel'] }))).toBe('unsupported-architecture');
  });

  it('rejects impossible head layouts and missing fields', () => {
    expect(codeOf(() => parseConfig({ ...llama, num_key_value_heads: 3 }))).toBe('bad-format');
    expect(codeOf(() => parseConfig({ ...llama, hidden_size: undefined }))).toBe('bad-format');
  });
});

describe('PEFT adapters', () => {
  const base = parseConfig({ architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 10 });
  const cfg = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] };
  const key = 'base_model.model.model.layers.0.self_attn.q_proj';
  const weights = (aShape: number[], bShape: number[]) =>
    writeSafetensors({
      [`${key}.lora_A.weight`]: { shape: aShape, data: new Float32Array(aShape[0] * aShape[1]) },
      [`${key}.lora_B.weight`]: { shape: bShape, data: new Float32Array(bShape[0] * bShape[1]) },
    });

  it('accepts a well-formed adapter with scale alpha/r (or alpha/sqrt(r) with rsLoRA)', () => {
    expect(parseAdapter('x', cfg, weights([2, 8], [8, 2]), base).config.scale).toBe(2);
    expect(parseAdapter('x', { ...cfg, use_rslora: true }, weights([2, 8], [8, 2]), base).config.scale).toBeCloseTo(4 / Math.SQRT2);
  });

  describe('PEFT\'s module selection and per-module ranks', () => {
    const base2 = parseConfig({ architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 10 });
    /** LoRA tensors for (layer, target, rank) triples, filled with 1s. */
    const tensors = (...mods: [number, 'q_proj' | 'v_proj' | 'down_proj', number][]) =>
      writeSafetensors(Object.fromEntries(mods.flatMap(([l, t, r]) => {
        const [out, inp] = t === 'down_proj' ? [8, 16] : t === 'v_proj' ? [4, 8] : [8, 8];
        const k = `base_model.model.model.layers.${l}.${t === 'down_proj' ? 'mlp' : 'self_attn'}.${t}`;
        return [[`${k}.lora_A.weight`, { shape: [r, inp], data: new Float32Array(r * inp).fill(1) }], [`${k}.lora_B.weight`, { shape: [out, r], data: new Float32Array(out * r).fill(1) }]];
      })));
    const all = tensors([0, 'q_proj', 2], [0, 'v_proj', 2], [1, 'q_proj', 2], [1, 'v_proj', 2]);

    it('leaves out (and lists) the tensors of modules target_modules, exclude_modules or layers_to_transform leave out', () => {
      const onlyQ = parseAdapter('x', { ...cfg, target_modules: ['q_proj'] }, all, base2);
      expect([...onlyQ.parts.keys()].sort()).toEqual(['0.q_proj', '1.q_proj']);
      expect(onlyQ.ignored).toHaveLength(4);
      expect([...parseAdapter('x', { ...cfg, target_modules: ['q_proj', 'v_proj'], layers_to_transform: 1 }, all, base2).parts.keys()].sort()).toEqual(['1.q_proj', '1.v_proj']);
      expect([...parseAdapter('x', { ...cfg, target_modules: ['q_proj', 'v_proj'], exclude_modules: ['model.layers.0.self_attn.v_proj'] }, all, base2).parts.keys()].sort()).toEqual(['0.q_proj', '1.q_proj', '1.v_proj']);
      // A string is one regular expression over the whole module name (PEFT's re.fullmatch); 'all-linear' is every projection.
      expect([...parseAdapter('x', { ...cfg, target_modules: '.*\\.1\\..*(q|v)_proj' }, all, base2).parts.keys()].sort()).toEqual(['1.q_proj', '1.v_proj']);
      expect(parseAdapter('x', { ...cfg, target_modules: 'all-linear' }, all, base2).parts.size).toBe(4);
    });

    it('takes each module\'s rank and alpha from rank_pattern and alpha_pattern, by full name or name suffix', () => {
      const mixed = tensors([0, 'q_proj', 4], [0, 'v_proj', 2], [1, 'q_proj', 4], [1, 'down_proj', 2]);
      const a = parseAdapter('x', { ...cfg, target_modules: ['q_proj', 'v_proj', 'down_proj'], rank_pattern: { q_proj: 4 }, alpha_pattern: { 'model.layers.1.mlp.down_proj': 8 } }, mixed, base2);
      expect(a.parts.get('0.q_proj')).toMatchObject({ r: 4, scale: 1 }); // alpha 4 / r 4
      expect(a.parts.get('0.v_proj')).toMatchObject({ r: 2, scale: 2 });
      expect(a.parts.get('1.down_proj')).toMatchObject({ r: 2, scale: 4 }); // alpha 8 / r 2
      // Without rank_pattern the rank-4 tensors don't fit the config: a typed error, not a silent misread.
      expect(codeOf(() => parseAdapter('x', { ...cfg, target_modules: ['q_proj', 'v_proj', 'down_proj'] }, mixed, base2))).toBe('incompatible-adapter');
    });

    it('reads fan_in_fan_out as PEFT does for nn.Linear (reset to false), and rejects what it can\'t apply, naming the field', () => {
      const plain = parseAdapter('x', { ...cfg, target_modules: ['q_proj'] }, all, base2);
      const fifo = parseAdapter('x', { ...cfg, target_modules: ['q_proj'], fan_in_fan_out: true }, all, base2);
      expect([...fifo.parts.values()]).toEqual([...plain.parts.values()]);
      const fieldOf = (extra: object) => {
        try {
          parseAdapter('x', { ...cfg, ...extra }, all, base2);
        } catch (e) {
          return (e as AppError).code === 'incompatible-adapter' ? (e as AppError).details?.field : 'wrong code';
        }
        return 'accepted';
      };
      expect(fieldOf({ use_dora: true })).toBe('use_dora');
      expect(fieldOf({ bias: 'all' })).toBe('bias');
      expect(fieldOf({ lora_bias: true })).toBe('lora_bias');
      expect(fieldOf({ modules_to_save: ['lm_head'] })).toBe('modules_to_save');
      expect(fieldOf({ layers_to_transform: [0], layers_pattern: 'h' })).toBe('layers_pattern');
      expect(fieldOf({ rank_pattern: { q_proj: 0 } })).toBe('rank_pattern');
      expect(fieldOf({ target_modules: ['c_attn'] })).toBe('target_modules');
      expect(fieldOf({ target_modules: '.*q_proj', layers_to_transform: [0] })).toBe('layers_to_transform');
      expect(fieldOf({ bias: 'none', use_dora: false, modules_to_save: null })).toBe('accepted');
    });
  });

  it('explains a rank or shape that does not fit the base model', () => {
    expect(() => parseAdapter('x', cfg, weights([2, 16], [8, 2]), base)).toThrow(/lora_A of shape \[2, 16\], expected \[2, 8\]/);
    expect(() => parseAdapter('x', { ...cfg, r: 4 }, weights([2, 8], [8, 2]), base)).toThrow(/rank 4/);
    expect(codeOf(() => parseAdapter('x', { ...cfg, target_modules: ['c_attn'] }, weights([2, 8], [8, 2]), base))).toBe('incompatible-adapter');
    const wrongLayer = writeSafetensors({ 'base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight': { shape: [2, 8], data: new Float32Array(16) } });
    expect(() => parseAdapter('x', cfg, wrongLayer, base)).toThrow(/layer 3/);
  });
});

describe('checkpoint loading over a network that drops', () => {
  const world = worldDir();
  const disk = fsSource(`${world}/device`);
  /** The disk, except that the named files fail the way fetch fails offline. */
  const offline = (names: string[]): FileSource => async (name, opts) => {
    if (names.includes(name)) throw new AppError('network', `Could not download ${name} (Failed to fetch).`, { file: name });
    return disk(name, opts);
  };

  it('treats an optional file it cannot fetch (the shard index) as absent, and loads', async () => {
    const ckpt = await loadCheckpoint(offline(['model.safetensors.index.json']));
    expect(ckpt.config.architecture).toBe('LlamaForCausalLM');
  });

  it('fails with a network error when a required file cannot be fetched', async () => {
    const err = await loadCheckpoint(offline(['model.safetensors'])).catch((e) => e);
    expect(isAppError(err) && err.code).toBe('network');
  });
});

describe('weights that load but can\'t run', () => {
  const world = worldDir();

  it('a NaN or an infinity in a tensor is a typed error naming the tensor, before any logit is computed', async () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const ckpt = await loadCheckpoint(fsSource(`${world}/device`));
      const name = 'model.layers.1.mlp.up_proj.weight';
      const t = ckpt.tensors.get(name)!;
      ckpt.tensors.set(name, { ...t, read: () => Object.assign(t.read(), { 17: bad }) });
      const err = await CrayonEngine.create(ckpt, { backend: 'cpu' }).catch((e: AppError) => e);
      expect(err).toMatchObject({ code: 'bad-format', details: { tensor: name, index: 17 } });
      expect((err as AppError).message).toContain(String(bad));
    }
  });

  it('a config that does not say tie_word_embeddings needs its own lm_head, as in Hugging Face', async () => {
    const disk = fsSource(`${world}/device`);
    const untold: FileSource = async (name, opts) => {
      const bytes = await disk(name, opts);
      if (name !== 'config.json' || !bytes) return bytes;
      const { tie_word_embeddings: _, ...cfg } = JSON.parse(new TextDecoder().decode(bytes));
      return new TextEncoder().encode(JSON.stringify(cfg));
    };
    const err = await CrayonEngine.create(await loadCheckpoint(untold), { backend: 'cpu' }).catch((e: AppError) => e);
    expect(err).toMatchObject({ code: 'missing-file', details: { tensor: 'lm_head.weight' } });
  });
});
