// A GGUF file as a Checkpoint: the config from its llama.* metadata, the
// tokenizer (tokenizer.json and tokenizer_config.json as Hugging Face writes
// them) from its tokenizer.ggml.* metadata, and its tensors under Hugging
// Face's names. llama.cpp's converter permutes the rows of q and k so that its
// interleaved RoPE computes what HF's rotate_half does; reading undoes that,
// so the engine runs one layout whatever the file. Quantized tensors are
// widened to f32 when the engine builds its weights.
import { AppError } from '../errors';
import { parseConfig, type ModelConfig } from './config';
import type { Checkpoint, TensorEntry } from './engine';
import { meta, parseGguf, type GgufFile, type GgufTensor } from './gguf';
import { dequantize, GGML_TYPE_NAMES } from './quants';
import { Tokenizer } from './tokenizer';

/** GGUF tensor names (per layer after `blk.N.`) → Hugging Face Llama names. */
const LAYER_NAMES: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};
const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

/** Pre-tokenizers (tokenizer.ggml.pre) whose splitting the engine reproduces: GPT-2's byte-level regex, SmolLM's with digits split first. */
const PRE_TOKENIZERS: Record<string, object> = {
  default: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  'gpt-2': { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  smollm: {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    ],
  },
};

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
const CONTROL = 3;
const USER_DEFINED = 4;

export function hfName(ggufName: string): string | null {
  const layer = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (layer) return LAYER_NAMES[layer[2]] ? `model.layers.${layer[1]}.${LAYER_NAMES[layer[2]]}` : null;
  return GLOBAL_NAMES[ggufName] ?? null;
}

/** The HF config.json a Llama GGUF's metadata describes, checked by the same parser as any config. */
export function ggufConfig(f: GgufFile): ModelConfig {
  const arch = meta(f, 'general.architecture', 'string');
  if (arch !== 'llama') throw new AppError('unsupported-architecture', `${f.name} holds a "${arch}" model; the engine reads Llama-family GGUF files (general.architecture "llama").`, { file: f.name, architecture: arch });
  const num = (key: string, fallback?: number) => meta(f, `llama.${key}`, 'number', fallback);
  const dim = num('embedding_length');
  const nHeads = num('attention.head_count');
  const headDim = num('attention.key_length', dim / nHeads);
  const scaling = f.metadata.get('llama.rope.scaling.type');
  if ((scaling !== undefined && scaling !== 'none') || f.tensors.has('rope_freqs.weight')) {
    throw new AppError('unsupported-architecture', `${f.name} uses RoPE scaling, which the engine does not implement.`, { file: f.name });
  }
  if (num('rope.dimension_count', headDim) !== headDim) throw new AppError('unsupported-architecture', `${f.name} rotates only part of each head (partial RoPE), which the engine does not implement.`, { file: f.name });
  const tokens = meta(f, 'tokenizer.ggml.tokens', 'array', []);
  const id = (key: string) => (f.metadata.has(key) ? meta(f, key, 'number') : undefined);
  return parseConfig({
    architectures: ['LlamaForCausalLM'],
    hidden_size: dim,
    intermediate_size: num('feed_forward_length'),
    num_hidden_layers: num('block_count'),
    num_attention_heads: nHeads,
    num_key_value_heads: num('attention.head_count_kv', nHeads),
    head_dim: headDim,
    vocab_size: num('vocab_size', tokens.length),
    rope_theta: num('rope.freq_base', 10000),
    rms_norm_eps: num('attention.layer_norm_rms_epsilon'),
    max_position_embeddings: num('context_length'),
    tie_word_embeddings: !f.tensors.has('output.weight'),
    bos_token_id: id('tokenizer.ggml.bos_token_id'),
    eos_token_id: id('tokenizer.ggml.eos_token_id'),
  });
}

/**
 * Undoes llama.cpp's q/k row permutation: within each head, GGUF row 2i + s holds HF row s·(headDim/2) + i
 * (the pairs RoPE rotates are adjacent in GGUF and half a head apart in HF).
 */
export function unpermuteRows(w: Float32Array, heads: number, rowLen: number): Float32Array {
  const out = new Float32Array(w.length);
  const headDim = w.length / rowLen / heads;
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const from = (h * headDim + 2 * i + s) * rowLen;
        out.set(w.subarray(from, from + rowLen), (h * headDim + s * half + i) * rowLen);
      }
    }
  }
  return out;
}

function entry(f: GgufFile, t: GgufTensor, permuteHeads: number): TensorEntry {
  const bytes = f.data.subarray(t.begin, t.end);
  const count = t.shape.reduce((a, d) => a * d, 1);
  return {
    shape: t.shape,
    dtype: GGML_TYPE_NAMES[t.type],
    bytes: bytes.byteLength,
    read: () => {
      const w = dequantize(t.type, bytes, count);
      return permuteHeads ? unpermuteRows(w, permuteHeads, t.shape[t.shape.length - 1]) : w;
    },
  };
}

/** Hugging Face tokenizer files built from the GGUF's vocabulary, merges, special tokens and chat template. */
export function ggufTokenizerFiles(f: GgufFile): { tokenizer: object; config: object } {
  const model = meta(f, 'tokenizer.ggml.model', 'string');
  if (model !== 'gpt2') throw new AppError('unsupported-architecture', `${f.name} has a "${model}" tokenizer; the engine reads byte-level BPE ("gpt2") tokenizers from GGUF files.`, { file: f.name, tokenizer: model });
  const pre = meta(f, 'tokenizer.ggml.pre', 'string', 'default');
  if (!PRE_TOKENIZERS[pre]) throw new AppError('unsupported-architecture', `${f.name} splits text the "${pre}" way before BPE, which the engine does not reproduce yet (it knows ${Object.keys(PRE_TOKENIZERS).join(', ')}).`, { file: f.name, pre });
  const tokens = meta(f, 'tokenizer.ggml.tokens', 'array') as string[];
  const types = meta(f, 'tokenizer.ggml.token_type', 'array', []) as number[];
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const added = tokens.flatMap((content, id) =>
    types[id] === CONTROL || types[id] === USER_DEFINED ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: types[id] === USER_DEFINED, special: types[id] === CONTROL }] : [],
  );
  const name = (key: string) => (f.metadata.has(key) ? tokens[meta(f, key, 'number')] ?? null : null);
  return {
    tokenizer: {
      version: '1.0',
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: PRE_TOKENIZERS[pre],
      post_processor: null, // chat templates write their own special tokens; encode() adds none
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: meta(f, 'tokenizer.ggml.merges', 'array') },
    },
    config: {
      bos_token: name('tokenizer.ggml.bos_token_id'),
      eos_token: name('tokenizer.ggml.eos_token_id'),
      unk_token: name('tokenizer.ggml.unknown_token_id'),
      pad_token: name('tokenizer.ggml.padding_token_id'),
      chat_template: f.metadata.has('tokenizer.chat_template') ? meta(f, 'tokenizer.chat_template', 'string') : null,
      add_bos_token: false,
      clean_up_tokenization_spaces: false,
    },
  };
}

/** Reads a GGUF file's bytes into a Checkpoint (config, tokenizer, tensors by HF name). */
export function ggufCheckpoint(bytes: Uint8Array, name = 'model.gguf'): Checkpoint {
  const f = parseGguf(bytes, name);
  const config = ggufConfig(f);
  const tensors = new Map<string, TensorEntry>();
  for (const t of f.tensors.values()) {
    const hf = hfName(t.name);
    if (!hf) throw new AppError('unsupported-architecture', `${name} has a tensor "${t.name}" that a Llama model doesn't have.`, { file: name, tensor: t.name });
    const heads = hf.endsWith('q_proj.weight') ? config.nHeads : hf.endsWith('k_proj.weight') ? config.nKvHeads : 0;
    tensors.set(hf, entry(f, t, heads));
  }
  const tok = ggufTokenizerFiles(f);
  return { config, tensors, tokenizer: new Tokenizer(tok.tokenizer, tok.config) };
}
