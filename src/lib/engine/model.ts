// The Llama-family transformer on the CPU, after llama2.c: plain structs for
// the weights and the scratch state, and one forward() that reads in the order
// data flows: RMSNorm, q/k/v (+bias), RoPE, grouped-query attention over the
// KV cache, output projection, residual, RMSNorm, SwiGLU, residual; final norm
// and logits. Every projection carries a LoraSlot for run-time blends.
import { AppError } from '../errors';
import { expectedShapes, type ModelConfig } from './config';
import { LoraSlot, moduleName, projShape, TARGETS, type Target } from './lora';
import { matvec, matvecJs } from './ops';

export { matvec };

export interface Linear {
  w: Float32Array; // [out, inp]
  out: number;
  inp: number;
  bias: Float32Array | null; // [out]
  lora: LoraSlot;
}

export interface LayerWeights {
  attnNorm: Float32Array; // [dim]
  ffnNorm: Float32Array; // [dim]
  proj: Record<Target, Linear>;
}

export interface Weights {
  embed: Float32Array; // [vocab, dim]
  layers: LayerWeights[];
  norm: Float32Array; // [dim]
  head: Float32Array; // [vocab, dim] (the embedding when tied)
}

/** Scratch buffers, allocated once per model and context length. */
export interface RunState {
  x: Float32Array; // [dim] residual stream
  xb: Float32Array; // [dim] normed input of a sublayer
  xb2: Float32Array; // [max(dim, qDim)] attention output before o_proj
  q: Float32Array; // [qDim]
  k: Float32Array; // [kvDim]
  v: Float32Array; // [kvDim]
  att: Float32Array; // [nHeads, ctx] scores
  hb: Float32Array; // [hiddenDim] gate
  hb2: Float32Array; // [hiddenDim] up
  logits: Float32Array; // [vocab]
  keyCache: Float32Array; // [nLayers, ctx, kvDim]
  valueCache: Float32Array; // [nLayers, ctx, kvDim]
  ropeCos: Float32Array; // [ctx, headDim/2]
  ropeSin: Float32Array; // [ctx, headDim/2]
  ctx: number;
}

/** Builds Weights from named tensors, checking every shape against the config. */
export function buildWeights(cfg: ModelConfig, get: (name: string) => { shape: number[]; data: () => Float32Array } | undefined): Weights {
  const take = (name: string): Float32Array => {
    const want = expectedShapes(cfg).get(name)!;
    const t = get(name);
    if (!t) throw new AppError('missing-file', `The checkpoint has no tensor "${name}".`, { tensor: name });
    if (t.shape.join(',') !== want.join(',')) {
      throw new AppError('shape-mismatch', `Tensor "${name}" has shape [${t.shape.join(', ')}] but the config needs [${want.join(', ')}].`, { tensor: name });
    }
    return finite(name, t.data());
  };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}`;
    const proj = {} as Record<Target, Linear>;
    for (const t of TARGETS) {
      const [out, inp] = projShape(cfg, t);
      const hasBias = cfg.attnBias && (t === 'q_proj' || t === 'k_proj' || t === 'v_proj');
      proj[t] = { w: take(`${moduleName(l, t)}.weight`), out, inp, bias: hasBias ? take(`${moduleName(l, t)}.bias`) : null, lora: new LoraSlot(out, inp) };
    }
    layers.push({ attnNorm: take(`${p}.input_layernorm.weight`), ffnNorm: take(`${p}.post_attention_layernorm.weight`), proj });
  }
  const embed = take('model.embed_tokens.weight');
  return { embed, layers, norm: take('model.norm.weight'), head: cfg.tiedEmbeddings ? embed : take('lm_head.weight') };
}

/**
 * The tensor itself when every value is finite; a NaN or an infinity (a damaged or badly converted
 * checkpoint) would make every logit NaN, so it is a typed error naming the tensor. One multiply-add per
 * value: NaN and ±Infinity times 0 are NaN, and any NaN makes the sum NaN.
 */
function finite(name: string, w: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i] * 0;
  if (s === 0) return w;
  const at = w.findIndex((v) => !Number.isFinite(v));
  throw new AppError('bad-format', `Tensor "${name}" holds ${w[at]} at index ${at}: the checkpoint is damaged or was converted wrongly.`, { tensor: name, index: at });
}

/** Every weight tensor once (the embedding once when the head is tied to it). */
export function weightTensors(w: Weights): Float32Array[] {
  const out = [w.embed, w.norm, ...(w.head === w.embed ? [] : [w.head])];
  for (const L of w.layers) out.push(L.attnNorm, L.ffnNorm, ...Object.values(L.proj).flatMap((p) => (p.bias ? [p.w, p.bias] : [p.w])));
  return out;
}

/** RoPE in HF's rotate_half layout: cos/sin [ctx, headDim/2] of pos * theta^(-2i/headDim). */
export function ropeTables(cfg: ModelConfig, ctx: number): { cos: Float32Array; sin: Float32Array } {
  const half = cfg.headDim / 2;
  const cos = new Float32Array(ctx * half);
  const sin = new Float32Array(ctx * half);
  for (let pos = 0; pos < ctx; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos / Math.pow(cfg.ropeTheta, (2 * i) / cfg.headDim);
      cos[pos * half + i] = Math.cos(angle);
      sin[pos * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

export function createRunState(cfg: ModelConfig, ctx: number): RunState {
  const qDim = cfg.nHeads * cfg.headDim;
  const kvDim = cfg.nKvHeads * cfg.headDim;
  const { cos: ropeCos, sin: ropeSin } = ropeTables(cfg, ctx);
  return {
    x: new Float32Array(cfg.dim), xb: new Float32Array(cfg.dim), xb2: new Float32Array(Math.max(cfg.dim, qDim)),
    q: new Float32Array(qDim), k: new Float32Array(kvDim), v: new Float32Array(kvDim),
    att: new Float32Array(cfg.nHeads * ctx), hb: new Float32Array(cfg.hiddenDim), hb2: new Float32Array(cfg.hiddenDim),
    logits: new Float32Array(cfg.vocabSize),
    keyCache: new Float32Array(cfg.nLayers * ctx * kvDim), valueCache: new Float32Array(cfg.nLayers * ctx * kvDim),
    ropeCos, ropeSin, ctx,
  };
}

export function rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, eps: number): void {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = w[i] * (x[i] * inv);
}

/** y = W x + b + LoRA terms. */
export function linear(y: Float32Array, lin: Linear, x: Float32Array): void {
  matvec(y, lin.w, x, lin.out, lin.inp);
  if (lin.bias) for (let i = 0; i < lin.out; i++) y[i] += lin.bias[i];
  if (lin.lora.active) lin.lora.apply(x, y);
}

function rope(v: Float32Array, nHeads: number, headDim: number, pos: number, s: RunState): void {
  const half = headDim / 2;
  const off = pos * half;
  for (let h = 0; h < nHeads; h++) {
    const b = h * headDim;
    for (let i = 0; i < half; i++) {
      const c = s.ropeCos[off + i];
      const sn = s.ropeSin[off + i];
      const a = v[b + i];
      const d = v[b + i + half];
      v[b + i] = a * c - d * sn;
      v[b + i + half] = d * c + a * sn;
    }
  }
}

/** Runs one token at position `pos` through the model; returns the logits (a view of s.logits). */
export function forward(cfg: ModelConfig, w: Weights, s: RunState, token: number, pos: number, computeLogits = true): Float32Array {
  const { dim, headDim, nHeads, nKvHeads, hiddenDim } = cfg;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  s.x.set(w.embed.subarray(token * dim, (token + 1) * dim));

  for (let l = 0; l < cfg.nLayers; l++) {
    const L = w.layers[l];
    // attention: q, k, v of the normed input, rotated; k and v go into the cache at pos
    rmsnorm(s.xb, s.x, L.attnNorm, cfg.normEps);
    linear(s.q, L.proj.q_proj, s.xb);
    linear(s.k, L.proj.k_proj, s.xb);
    linear(s.v, L.proj.v_proj, s.xb);
    rope(s.q, nHeads, headDim, pos, s);
    rope(s.k, nKvHeads, headDim, pos, s);
    const cacheOff = l * s.ctx * kvDim;
    s.keyCache.set(s.k, cacheOff + pos * kvDim);
    s.valueCache.set(s.v, cacheOff + pos * kvDim);

    for (let h = 0; h < nHeads; h++) {
      const qOff = h * headDim;
      const kvHead = Math.floor(h / group) * headDim;
      const att = s.att.subarray(h * s.ctx, h * s.ctx + pos + 1);
      let max = -Infinity;
      for (let t = 0; t <= pos; t++) {
        const kOff = cacheOff + t * kvDim + kvHead;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += s.q[qOff + i] * s.keyCache[kOff + i];
        att[t] = dot * scale;
        if (att[t] > max) max = att[t];
      }
      let sum = 0;
      for (let t = 0; t <= pos; t++) sum += att[t] = Math.exp(att[t] - max);
      const out = s.xb2.subarray(qOff, qOff + headDim).fill(0);
      for (let t = 0; t <= pos; t++) {
        const a = att[t] / sum;
        const vOff = cacheOff + t * kvDim + kvHead;
        for (let i = 0; i < headDim; i++) out[i] += a * s.valueCache[vOff + i];
      }
    }
    linear(s.xb, L.proj.o_proj, s.xb2.subarray(0, nHeads * headDim));
    for (let i = 0; i < dim; i++) s.x[i] += s.xb[i];

    // feed-forward: SwiGLU of the normed input
    rmsnorm(s.xb, s.x, L.ffnNorm, cfg.normEps);
    linear(s.hb, L.proj.gate_proj, s.xb);
    linear(s.hb2, L.proj.up_proj, s.xb);
    for (let i = 0; i < hiddenDim; i++) {
      const g = s.hb[i];
      s.hb[i] = (g / (1 + Math.exp(-g))) * s.hb2[i];
    }
    linear(s.xb, L.proj.down_proj, s.hb);
    for (let i = 0; i < dim; i++) s.x[i] += s.xb[i];
  }

  if (!computeLogits) return s.logits; // prefill: only the cache matters
  rmsnorm(s.x, s.x, w.norm, cfg.normEps);
  matvec(s.logits, w.head, s.x, cfg.vocabSize, dim);
  return s.logits;
}

/**
 * Crayon's feature of a token sequence: the mean over tokens of layer 0's
 * q_proj(input_layernorm(embed(token))) (bias included), before RoPE and with
 * no adapter. Needs no cache: the query of a token depends on that token alone.
 * `qWeight`: layer 0's q_proj as loaded, where a merged blend has changed w's.
 * Always on the TypeScript kernel: the feature is then bit-identical whether qWeight is
 * the weights in a wasm memory or the copy a merged blend keeps, and on every engine.
 */
export function queryFeature(cfg: ModelConfig, w: Weights, ids: number[], qWeight = w.layers[0].proj.q_proj.w): Float32Array {
  const L = w.layers[0];
  const q = L.proj.q_proj;
  const xb = new Float32Array(cfg.dim);
  const tmp = new Float32Array(q.out);
  const sum = new Float32Array(q.out);
  for (const id of ids) {
    rmsnorm(xb, w.embed.subarray(id * cfg.dim, (id + 1) * cfg.dim), L.attnNorm, cfg.normEps);
    matvecJs(tmp, qWeight, xb, q.out, q.inp);
    if (q.bias) for (let i = 0; i < q.out; i++) tmp[i] += q.bias[i];
    for (let i = 0; i < q.out; i++) sum[i] += tmp[i];
  }
  for (let i = 0; i < q.out; i++) sum[i] /= Math.max(1, ids.length);
  return sum;
}
