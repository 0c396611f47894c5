// A checkpoint with a real model's layer shapes and random weights, built in
// memory, with random PEFT adapters: for speed measurements where the
// reference world's 0.87M-parameter model is too small to show how LoRA's
// cost compares with a real model's (the world can't ship a 135M model).
// Shapes default to SmolLM2-135M's (30 layers, 576 wide, 9 heads / 3 KV
// heads, MLP 1536, vocabulary 49,152, tied embeddings).
import { readFileSync } from 'node:fs';
import type { Checkpoint } from '../src/lib/engine/engine';
import { parseConfig } from '../src/lib/engine/config';
import { rng } from '../src/lib/engine/sampler';
import { parseSafetensors, safetensorsTensors, writeSafetensors } from '../src/lib/engine/safetensors';
import { Tokenizer } from '../src/lib/engine/tokenizer';

export const SMOLLM2_135M = { hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152 };

type Shape = typeof SMOLLM2_135M;

function random(n: number, scale: number, u: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (u() * 2 - 1) * scale;
  return a;
}

const projections = (s: Shape) => {
  const kv = (s.hidden_size / s.num_attention_heads) * s.num_key_value_heads;
  return { q_proj: [s.hidden_size, s.hidden_size], k_proj: [kv, s.hidden_size], v_proj: [kv, s.hidden_size], o_proj: [s.hidden_size, s.hidden_size], gate_proj: [s.intermediate_size, s.hidden_size], up_proj: [s.intermediate_size, s.hidden_size], down_proj: [s.hidden_size, s.intermediate_size] } as Record<string, [number, number]>;
};

export function syntheticCheckpoint(world: string, shape: Shape = SMOLLM2_135M, seed = 1): Checkpoint {
  const u = rng(seed);
  const t: Record<string, { shape: number[]; data: Float32Array }> = {};
  const d = shape.hidden_size;
  t['model.embed_tokens.weight'] = { shape: [shape.vocab_size, d], data: random(shape.vocab_size * d, 0.02, u) };
  t['model.norm.weight'] = { shape: [d], data: new Float32Array(d).fill(1) };
  for (let l = 0; l < shape.num_hidden_layers; l++) {
    t[`model.layers.${l}.input_layernorm.weight`] = { shape: [d], data: new Float32Array(d).fill(1) };
    t[`model.layers.${l}.post_attention_layernorm.weight`] = { shape: [d], data: new Float32Array(d).fill(1) };
    for (const [name, [out, inp]] of Object.entries(projections(shape))) {
      const part = name.endsWith('_proj') && ['q', 'k', 'v', 'o'].includes(name[0]) ? 'self_attn' : 'mlp';
      t[`model.layers.${l}.${part}.${name}.weight`] = { shape: [out, inp], data: random(out * inp, 1 / Math.sqrt(inp), u) };
    }
  }
  const config = parseConfig({ architectures: ['LlamaForCausalLM'], ...shape, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 1 });
  const tok = new Tokenizer(JSON.parse(readFileSync(`${world}/tokenizer/tokenizer.json`, 'utf8')), JSON.parse(readFileSync(`${world}/tokenizer/tokenizer_config.json`, 'utf8')));
  return { config, tensors: safetensorsTensors([parseSafetensors(writeSafetensors(t))]), tokenizer: tok };
}

/** A random rank-r PEFT adapter on every projection of every layer. */
export function syntheticAdapter(shape: Shape = SMOLLM2_135M, seed = 1, r = 8): { config: unknown; weights: Uint8Array } {
  const u = rng(seed);
  const t: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (let l = 0; l < shape.num_hidden_layers; l++) {
    for (const [name, [out, inp]] of Object.entries(projections(shape))) {
      const part = ['q', 'k', 'v', 'o'].includes(name[0]) ? 'self_attn' : 'mlp';
      const key = `base_model.model.model.layers.${l}.${part}.${name}`;
      t[`${key}.lora_A.weight`] = { shape: [r, inp], data: random(r * inp, 1 / Math.sqrt(inp), u) };
      t[`${key}.lora_B.weight`] = { shape: [out, r], data: random(out * r, 0.01, u) };
    }
  }
  const config = { peft_type: 'LORA', r, lora_alpha: 2 * r, target_modules: Object.keys(projections(shape)), use_rslora: false, base_model_name_or_path: 'synthetic' };
  return { config, weights: writeSafetensors(t) };
}
