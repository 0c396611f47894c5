// A Hugging Face config.json as the engine's ModelConfig, for the
// architectures the engine runs: Llama (SmolLM2 included) and Qwen2.
import { AppError } from '../errors';

export type Architecture = 'LlamaForCausalLM' | 'Qwen2ForCausalLM';
export const ARCHITECTURES: Architecture[] = ['LlamaForCausalLM', 'Qwen2ForCausalLM'];

export interface ModelConfig {
  architecture: Architecture;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  ropeTheta: number;
  normEps: number;
  /** Positions the model was trained for (max_position_embeddings). */
  maxSeqLen: number;
  tiedEmbeddings: boolean;
  /** q/k/v projections have biases (Qwen2). */
  attnBias: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

function int(cfg: Record<string, unknown>, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new AppError('bad-format', `config.json: "${key}" must be a positive integer (got ${JSON.stringify(cfg[key])}).`, { field: key });
  }
  return v;
}

export function parseConfig(json: unknown): ModelConfig {
  if (!json || typeof json !== 'object') throw new AppError('bad-format', 'config.json is not a JSON object.');
  const c = json as Record<string, unknown>;
  const arch = Array.isArray(c.architectures) ? c.architectures[0] : undefined;
  if (!ARCHITECTURES.includes(arch as Architecture)) {
    throw new AppError('unsupported-architecture', `This model is a ${String(arch ?? c.model_type ?? 'unknown architecture')}; the engine runs ${ARCHITECTURES.join(' and ')}.`, { architecture: arch });
  }
  if (c.rope_scaling && typeof c.rope_scaling === 'object' && (c.rope_scaling as { type?: string; rope_type?: string }).rope_type !== 'default') {
    throw new AppError('unsupported-architecture', `This model uses RoPE scaling (${JSON.stringify(c.rope_scaling)}), which the engine does not implement.`);
  }
  const dim = int(c, 'hidden_size');
  const nHeads = int(c, 'num_attention_heads');
  const nKvHeads = int(c, 'num_key_value_heads', nHeads);
  const headDim = int(c, 'head_dim', dim / nHeads);
  if (nHeads % nKvHeads !== 0) throw new AppError('bad-format', `config.json: ${nHeads} attention heads can't be shared by ${nKvHeads} key/value heads.`);
  if (headDim % 2 !== 0) throw new AppError('bad-format', `config.json: head size ${headDim} must be even for RoPE.`);
  const eos = c.eos_token_id;
  return {
    architecture: arch as Architecture,
    dim,
    hiddenDim: int(c, 'intermediate_size'),
    nLayers: int(c, 'num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: int(c, 'vocab_size'),
    ropeTheta: typeof c.rope_theta === 'number' ? c.rope_theta : 10000,
    normEps: typeof c.rms_norm_eps === 'number' ? c.rms_norm_eps : 1e-6,
    maxSeqLen: int(c, 'max_position_embeddings', 2048),
    // LlamaConfig and Qwen2Config default to untied: a config that doesn't say has its own lm_head.
    tiedEmbeddings: c.tie_word_embeddings === true,
    attnBias: arch === 'Qwen2ForCausalLM' || c.attention_bias === true,
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : null,
    eosTokenIds: Array.isArray(eos) ? eos.filter((x): x is number => typeof x === 'number') : typeof eos === 'number' ? [eos] : [],
  };
}

/** The shape every weight of a model with this config must have, by HF name. */
export function expectedShapes(cfg: ModelConfig): Map<string, number[]> {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = cfg;
  const q = nHeads * headDim;
  const kv = nKvHeads * headDim;
  const m = new Map<string, number[]>([
    ['model.embed_tokens.weight', [vocabSize, dim]],
    ['model.norm.weight', [dim]],
  ]);
  if (!cfg.tiedEmbeddings) m.set('lm_head.weight', [vocabSize, dim]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}`;
    m.set(`${p}.input_layernorm.weight`, [dim]);
    m.set(`${p}.post_attention_layernorm.weight`, [dim]);
    m.set(`${p}.self_attn.q_proj.weight`, [q, dim]);
    m.set(`${p}.self_attn.k_proj.weight`, [kv, dim]);
    m.set(`${p}.self_attn.v_proj.weight`, [kv, dim]);
    m.set(`${p}.self_attn.o_proj.weight`, [dim, q]);
    m.set(`${p}.mlp.gate_proj.weight`, [hiddenDim, dim]);
    m.set(`${p}.mlp.up_proj.weight`, [hiddenDim, dim]);
    m.set(`${p}.mlp.down_proj.weight`, [dim, hiddenDim]);
    if (cfg.attnBias) {
      m.set(`${p}.self_attn.q_proj.bias`, [q]);
      m.set(`${p}.self_attn.k_proj.bias`, [kv]);
      m.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
  }
  return m;
}
