// PEFT LoRA adapters: parsing and validation against the base model, and the
// per-projection slots that apply a blend of many adapters at run time:
//   delta:   y = W x + sum_i w_i s_i B_i (A_i x)
//   factor:  y = W x + s (sum_i w_i B_i) ((sum_i w_i A_i) x)    (LoraHub)
//   merged:  W' = W + sum_i w_i s_i B_i A_i, baked in for the fastest decode
// where s_i = lora_alpha / r (or lora_alpha / sqrt(r) with rsLoRA).
import { AppError } from '../errors';
import type { ModelConfig } from './config';
import { matvec } from './ops';
import { parseSafetensors, readTensor, type SafetensorsFile } from './safetensors';

export const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Target = (typeof TARGETS)[number];

export interface Blend {
  mode: 'delta' | 'factor' | 'merged';
  /** Weight per loaded adapter id; adapters not named weigh 0. */
  weights: Record<string, number>;
}

export interface AdapterConfig {
  /** The rank, alpha and scale of modules that rank_pattern and alpha_pattern don't name. */
  r: number;
  loraAlpha: number;
  /** The projections target_modules reaches (in at least one layer). */
  targetModules: Target[];
  useRslora: boolean;
  scale: number;
  /** PEFT's module selection and per-module ranks and alphas, as moduleConfig reads them. */
  select: {
    /** A list of module names or name suffixes, or one regular expression matched against the whole name. */
    targets: string[] | RegExp;
    exclude: string[] | RegExp | null;
    layers: number[] | null;
    rankPattern: Record<string, number>;
    alphaPattern: Record<string, number>;
  };
}

/** One adapter's factors for one projection of one layer. */
export interface LoraPart {
  adapterId: string;
  r: number;
  scale: number;
  a: Float32Array; // [r, in]
  /** B transposed, [r, out] (PEFT stores [out, r]): row k is rank k's output direction. */
  bt: Float32Array;
}

export interface Adapter {
  id: string;
  config: AdapterConfig;
  /** Keyed `${layer}.${target}`. */
  parts: Map<string, LoraPart>;
  bytes: number;
  /** Tensors in the file for modules the config leaves out, which PEFT would not load either. */
  ignored: string[];
}

const PEFT_KEY = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)(?:\.default)?\.weight$/;

/** adapter_config.json fields that change what an adapter computes in ways the engine does not implement. */
const UNSUPPORTED: [field: string, isSet: (v: unknown) => boolean, why: string][] = [
  ['use_dora', (v) => v === true, 'is a DoRA adapter (use_dora), which the engine does not run'],
  ['bias', (v) => v !== undefined && v !== null && v !== 'none', 'trains biases (bias is not "none"), which the engine does not apply'],
  ['lora_bias', (v) => v === true, 'has a bias on lora_B (lora_bias), which the engine does not apply'],
  ['modules_to_save', (v) => Array.isArray(v) && v.length > 0, 'replaces whole modules (modules_to_save), which the engine does not load'],
  ['layer_replication', (v) => v !== undefined && v !== null, 'duplicates layers (layer_replication), which the engine does not do'],
];

/** Layers searched for the projections a target_modules pattern reaches, before the base model is known. */
const MAX_LAYERS = 256;

export function parseAdapterConfig(json: unknown, id: string): AdapterConfig {
  const c = (json && typeof json === 'object' ? json : null) as Record<string, unknown> | null;
  const bad = (why: string, field?: string) => new AppError('incompatible-adapter', `Adapter "${id}": adapter_config.json ${why}.`, { adapter: id, field });
  if (!c) throw bad('is not a JSON object');
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') throw bad(`is a ${String(c.peft_type)} adapter; only LORA is supported`, 'peft_type');
  for (const [field, isSet, why] of UNSUPPORTED) if (isSet(c[field])) throw bad(why, field);
  const r = c.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0 || r > 1024) throw bad(`has an invalid rank r=${JSON.stringify(r)}`, 'r');
  const alpha = c.lora_alpha ?? r;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw bad(`has an invalid lora_alpha ${JSON.stringify(alpha)}`, 'lora_alpha');
  const names = (field: string, v: unknown, allowEmpty: boolean): string[] | RegExp | null => {
    if (v === undefined || v === null) return allowEmpty ? null : (() => { throw bad(`names no ${field}`, field); })();
    if (v === 'all-linear') return [...TARGETS];
    if (typeof v === 'string') {
      try {
        return new RegExp(`^(?:${v})$`); // PEFT: re.fullmatch on the module's name
      } catch {
        throw bad(`has a ${field} pattern that is not a valid regular expression`, field);
      }
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string') || (!allowEmpty && v.length === 0)) throw bad(`has an invalid ${field}`, field);
    return v as string[];
  };
  const targets = names('target_modules', c.target_modules, false)!;
  const exclude = names('exclude_modules', c.exclude_modules, true);
  let layers: number[] | null = null;
  if (c.layers_to_transform !== undefined && c.layers_to_transform !== null) {
    const l = typeof c.layers_to_transform === 'number' ? [c.layers_to_transform] : c.layers_to_transform;
    if (!Array.isArray(l) || !l.every((x) => Number.isInteger(x) && x >= 0)) throw bad('has an invalid layers_to_transform', 'layers_to_transform');
    // PEFT refuses layers_to_transform beside a target_modules regular expression (the expression names the layers).
    if (targets instanceof RegExp) throw bad('has layers_to_transform beside a target_modules regular expression, which PEFT refuses', 'layers_to_transform');
    const pattern = c.layers_pattern;
    if (pattern !== undefined && pattern !== null && pattern !== 'layers' && !(Array.isArray(pattern) && pattern.includes('layers'))) {
      throw bad(`looks for layers under ${JSON.stringify(pattern)} (layers_pattern); a Llama-family model keeps them under "layers"`, 'layers_pattern');
    }
    layers = l as number[];
  }
  const pattern = (field: string): Record<string, number> => {
    const v = c[field] ?? {};
    if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v as object).every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) throw bad(`has an invalid ${field}`, field);
    return v as Record<string, number>;
  };
  const rankPattern = pattern('rank_pattern');
  const alphaPattern = pattern('alpha_pattern');
  for (const [k, rk] of Object.entries(rankPattern)) if (!Number.isInteger(rk) || rk > 1024) throw bad(`gives "${k}" an invalid rank ${rk} (rank_pattern)`, 'rank_pattern');
  const useRslora = c.use_rslora === true;
  // fan_in_fan_out is left alone: for torch.nn.Linear (every projection here) PEFT resets it to false.
  const config: AdapterConfig = { r, loraAlpha: alpha, targetModules: [], useRslora, scale: useRslora ? alpha / Math.sqrt(r) : alpha / r, select: { targets, exclude, layers, rankPattern, alphaPattern } };
  // Which projections it reaches in some layer (a regular expression may name layers, and a module named in full
  // escapes layers_to_transform): for display and the check below.
  const someLayers = Array.from({ length: MAX_LAYERS }, (_, l) => l);
  config.targetModules = TARGETS.filter((t) => someLayers.some((l) => moduleConfig(config, l, t)));
  if (config.targetModules.length === 0) throw bad('targets no projection of a Llama-family model (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)', 'target_modules');
  return config;
}

/** A module's name in the base model, as PEFT matches it: model.layers.3.self_attn.q_proj */
export function moduleName(layer: number, t: Target): string {
  return `model.layers.${layer}.${ATTENTION.has(t) ? 'self_attn' : 'mlp'}.${t}`;
}
const ATTENTION = new Set<Target>(['q_proj', 'k_proj', 'v_proj', 'o_proj']);

function matches(sel: string[] | RegExp, name: string): boolean {
  return sel instanceof RegExp ? sel.test(name) : sel.some((k) => name === k || name.endsWith(`.${k}`));
}

/**
 * PEFT's lookup in rank_pattern / alpha_pattern (get_pattern_key): the first key, in the file's order, that matches
 * the module's whole name or its end after a dot, `(.*\.)?(key)$` from the start. A key is a regular expression
 * (`^model.layers.0.self_attn.q_proj` names one module only), grouped as a whole (`self_attn|up_proj` matches up_proj
 * modules, not attention ones), and a full name has no precedence over a suffix key before it (PEFT saves keys sorted).
 */
function patternValue(p: Record<string, number>, name: string): number | undefined {
  const key = Object.keys(p).find((k) => {
    try {
      return new RegExp(`^(?:.*\\.)?(?:${k})$`).test(name);
    } catch {
      return false;
    }
  });
  return key === undefined ? undefined : p[key];
}

/** The rank, alpha and scale PEFT gives one projection of one layer, or null when PEFT would not inject a LoRA there. */
export function moduleConfig(c: AdapterConfig, layer: number, t: Target): { r: number; alpha: number; scale: number } | null {
  const name = moduleName(layer, t);
  const { targets, exclude, layers, rankPattern, alphaPattern } = c.select;
  // PEFT (check_target_module_exists) applies layers_to_transform to suffix matches only: a module that a
  // target_modules list names in full is injected whatever its layer.
  const namedInFull = Array.isArray(targets) && targets.includes(name);
  if (!matches(targets, name) || (exclude && matches(exclude, name)) || (layers && !namedInFull && !layers.includes(layer))) return null;
  const r = patternValue(rankPattern, name) ?? c.r;
  const alpha = patternValue(alphaPattern, name) ?? c.loraAlpha;
  return { r, alpha, scale: c.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

/** [out, in] of a projection. */
export function projShape(cfg: ModelConfig, t: Target): [number, number] {
  const q = cfg.nHeads * cfg.headDim;
  const kv = cfg.nKvHeads * cfg.headDim;
  const out = { q_proj: q, k_proj: kv, v_proj: kv, o_proj: cfg.dim, gate_proj: cfg.hiddenDim, up_proj: cfg.hiddenDim, down_proj: cfg.dim }[t];
  const inp = { q_proj: cfg.dim, k_proj: cfg.dim, v_proj: cfg.dim, o_proj: q, gate_proj: cfg.dim, up_proj: cfg.dim, down_proj: cfg.hiddenDim }[t];
  return [out, inp];
}

/** Parses and validates a PEFT adapter against the base model's config. */
export function parseAdapter(id: string, configJson: unknown, weights: Uint8Array | SafetensorsFile, base: ModelConfig): Adapter {
  const config = parseAdapterConfig(configJson, id);
  const file = weights instanceof Uint8Array ? parseSafetensors(weights, `${id}/adapter_model.safetensors`) : weights;
  const bad = (why: string, extra: Record<string, unknown> = {}) => new AppError('incompatible-adapter', `Adapter "${id}": ${why}.`, { adapter: id, ...extra });
  const halves = new Map<string, { a?: string; b?: string }>();
  const ignored: string[] = [];
  for (const key of file.tensors.keys()) {
    const m = PEFT_KEY.exec(key);
    if (!m) throw bad(`tensor "${key}" is not a LoRA weight of a Llama-family projection`, { tensor: key });
    const layer = Number(m[1]);
    if (layer >= base.nLayers) throw bad(`tensor "${key}" is for layer ${layer}, but the base model has ${base.nLayers} layers`, { tensor: key });
    const slot = `${layer}.${m[3]}`;
    // Tensors of modules PEFT would not inject (target_modules, exclude_modules, layers_to_transform) are
    // not loaded by PEFT either: they are skipped, and counted.
    if (!moduleConfig(config, layer, m[3] as Target)) {
      ignored.push(key);
      continue;
    }
    const h = halves.get(slot) ?? {};
    h[m[4] === 'A' ? 'a' : 'b'] = key;
    halves.set(slot, h);
  }
  if (halves.size === 0) throw bad(ignored.length ? `has LoRA tensors only for modules its target_modules / layers_to_transform leave out (${ignored.length})` : 'has no LoRA tensors');
  const parts = new Map<string, LoraPart>();
  let bytes = 0;
  for (const [slot, h] of halves) {
    if (!h.a || !h.b) throw bad(`${slot.replace('.', ' ')} has only its lora_${h.a ? 'A' : 'B'} matrix`);
    const target = slot.split('.')[1] as Target;
    const [out, inp] = projShape(base, target);
    const ta = file.tensors.get(h.a)!;
    const tb = file.tensors.get(h.b)!;
    const { r, scale } = moduleConfig(config, Number(slot.split('.')[0]), target)!;
    if (ta.shape.length !== 2 || ta.shape[0] !== r || ta.shape[1] !== inp) {
      throw bad(`${target} in layer ${slot.split('.')[0]} has lora_A of shape [${ta.shape.join(', ')}], expected [${r}, ${inp}] (rank ${r}, input ${inp})`, { tensor: h.a });
    }
    if (tb.shape.length !== 2 || tb.shape[0] !== out || tb.shape[1] !== r) {
      throw bad(`${target} in layer ${slot.split('.')[0]} has lora_B of shape [${tb.shape.join(', ')}], expected [${out}, ${r}] (output ${out}, rank ${r})`, { tensor: h.b });
    }
    const a = readTensor(file, h.a);
    const b = readTensor(file, h.b);
    if (!a.every(Number.isFinite) || !b.every(Number.isFinite)) throw bad(`${target} in layer ${slot.split('.')[0]} has non-finite values`);
    const bt = new Float32Array(b.length);
    for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) bt[k * out + o] = b[o * r + k];
    parts.set(slot, { adapterId: id, r, scale, a, bt });
    bytes += (a.length + bt.length) * 4;
  }
  return { id, config, parts, bytes, ignored };
}

/** Parts' factors stacked into one low-rank product: A [R, inp] and B transposed [R, out], rows stacked. */
function stackFactors(parts: LoraPart[], inp: number, out: number): { a: Float32Array; bt: Float32Array; r: number } {
  const r = parts.reduce((s, p) => s + p.r, 0);
  const a = new Float32Array(r * inp);
  const bt = new Float32Array(r * out);
  let off = 0;
  for (const p of parts) {
    a.set(p.a, off * inp);
    bt.set(p.bt, off * out);
    off += p.r;
  }
  return { a, bt, r };
}

/**
 * The LoRA terms of one projection: every loaded adapter's factors for it, and
 * the plan for the current blend (set by `plan`, applied by `apply`).
 */
export class LoraSlot {
  readonly parts: LoraPart[] = [];
  /** delta: the parts with a non-zero weight and their coefficient w_i * s_i. */
  private delta: { part: LoraPart; coef: number }[] = [];
  /**
   * delta, as one low-rank product: the active parts' A stacked [R, inp], B transposed stacked [R, out],
   * coef per rank row, and its own scratch u [R]. (It outlives factor plans in between: the scratch
   * is its own, so a factor plan of another rank can't leave it the wrong length.) `parts` are the
   * parts it stacks: compared by identity, so an adapter removed and loaded again under the same
   * id is restacked.
   */
  private cat: { a: Float32Array; bt: Float32Array; coef: Float32Array; r: number; parts: LoraPart[]; u: Float32Array } | null = null;
  /** factor: the blended factors, with scratch u [r]. */
  private factor: { a: Float32Array; bt: Float32Array; r: number; scale: number; u: Float32Array } | null = null;

  constructor(
    readonly out: number,
    readonly inp: number,
  ) {}

  get active(): boolean {
    return this.delta.length > 0 || this.factor !== null;
  }

  /**
   * The planned blend as one low-rank product, for backends that apply it themselves (WebGPU):
   * y += B diag(coef) A x with A [r, inp] and B given transposed, bt [r, out]. A delta plan's a
   * and bt are the same arrays (same identity) for every blend of the same adapters, and only coef
   * changes; a factor plan's are new for every blend, with coef the adapters' scale on every row.
   */
  get planned(): { kind: 'none' } | { kind: 'delta' | 'factor'; a: Float32Array; bt: Float32Array; r: number; coef: Float32Array } {
    if (this.factor) return { kind: 'factor', a: this.factor.a, bt: this.factor.bt, r: this.factor.r, coef: new Float32Array(this.factor.r).fill(this.factor.scale) };
    if (this.delta.length) return { kind: 'delta', a: this.cat!.a, bt: this.cat!.bt, r: this.cat!.r, coef: this.cat!.coef };
    return { kind: 'none' };
  }

  plan(blend: Blend | null): void {
    this.delta = [];
    this.factor = null;
    if (!blend || blend.mode === 'merged') return;
    const used = this.parts.filter((p) => (blend.weights[p.adapterId] ?? 0) !== 0);
    if (used.length === 0) return;
    if (blend.mode === 'delta') {
      this.delta = used.map((part) => ({ part, coef: blend.weights[part.adapterId] * part.scale }));
      this.concatenate();
      return;
    }
    const r = used[0].r;
    const a = new Float32Array(r * this.inp);
    const bt = new Float32Array(r * this.out);
    for (const p of used) {
      const w = blend.weights[p.adapterId];
      for (let i = 0; i < a.length; i++) a[i] += w * p.a[i];
      for (let i = 0; i < bt.length; i++) bt[i] += w * p.bt[i];
    }
    this.factor = { a, bt, r, scale: used[0].scale, u: new Float32Array(r) };
  }

  /** Stacks the active parts' factors once per set of adapters; a new blend of the same set only rewrites coef. */
  private concatenate(): void {
    const parts = this.delta.map((d) => d.part);
    if (!this.cat || this.cat.parts.length !== parts.length || this.cat.parts.some((p, i) => p !== parts[i])) {
      const { a, bt, r } = stackFactors(parts, this.inp, this.out);
      this.cat = { a, bt, coef: new Float32Array(r), r, parts, u: new Float32Array(r) };
    }
    let off = 0;
    for (const { part, coef } of this.delta) {
      this.cat.coef.fill(coef, off, off + part.r);
      off += part.r;
    }
  }

  /** y += LoRA terms of x under the planned blend. x [inp], y [out]. */
  apply(x: Float32Array, y: Float32Array): void {
    if (this.factor) {
      const f = this.factor;
      lowRank(f.a, f.bt, f.r, f.scale, x, y, this.inp, this.out, f.u);
      return;
    }
    const c = this.cat!;
    const u = c.u;
    matvec(u, c.a, x, c.r, this.inp); // u = A x       [R]
    for (let k = 0; k < c.r; k++) u[k] *= c.coef[k]; // u *= w_i s_i per rank row
    addTransposed(y, c.bt, u, c.r, this.out); // y += B u
  }

  /** W += sum_i w_i s_i B_i A_i (or, with sign -1, takes it back out). w [out, inp]. */
  mergeInto(w: Float32Array, blend: Blend, sign: 1 | -1): void {
    const used = this.parts.filter((p) => (blend.weights[p.adapterId] ?? 0) !== 0);
    if (used.length === 0) return;
    const { a, bt, r } = stackFactors(used, this.inp, this.out);
    const coef = new Float64Array(r);
    let off = 0;
    for (const p of used) {
      coef.fill(sign * blend.weights[p.adapterId] * p.scale, off, off + p.r);
      off += p.r;
    }
    addProduct(w, a, bt, coef, r, this.inp, this.out);
  }
}

/**
 * W += B diag(coef) A, with A [r, inp] and B given transposed, bt [r, out]: eight rank rows per
 * pass over each row of W, so W is read and written once per eight, the eight terms summed in
 * double and rounded to f32 once. At the device model's shapes with r = 64, a merged blend switch
 * (unmerge, merge) measured 60 ms this way, 95 ms with four rows per pass and 245-270 ms with
 * one, in Node. Taking the product back out (coef negated) sums the same terms in the same
 * order, so merging and unmerging leave only W's own rounding behind.
 */
function addProduct(w: Float32Array, a: Float32Array, bt: Float32Array, coef: Float64Array, r: number, inp: number, out: number): void {
  for (let o = 0; o < out; o++) {
    const row = o * inp;
    let k = 0;
    for (; k + 8 <= r; k += 8) {
      const b0 = coef[k] * bt[k * out + o];
      const b1 = coef[k + 1] * bt[(k + 1) * out + o];
      const b2 = coef[k + 2] * bt[(k + 2) * out + o];
      const b3 = coef[k + 3] * bt[(k + 3) * out + o];
      const b4 = coef[k + 4] * bt[(k + 4) * out + o];
      const b5 = coef[k + 5] * bt[(k + 5) * out + o];
      const b6 = coef[k + 6] * bt[(k + 6) * out + o];
      const b7 = coef[k + 7] * bt[(k + 7) * out + o];
      const a0 = k * inp;
      for (let i = 0; i < inp; i++) {
        const j = a0 + i;
        w[row + i] += b0 * a[j] + b1 * a[j + inp] + b2 * a[j + 2 * inp] + b3 * a[j + 3 * inp] + b4 * a[j + 4 * inp] + b5 * a[j + 5 * inp] + b6 * a[j + 6 * inp] + b7 * a[j + 7 * inp];
      }
    }
    for (; k < r; k++) {
      const bk = coef[k] * bt[k * out + o];
      const ak = k * inp;
      for (let i = 0; i < inp; i++) w[row + i] += bk * a[ak + i];
    }
  }
}

/** y += coef * B (A x); A [r, inp], bt = B transposed [r, out]; u is scratch of length >= r. */
function lowRank(a: Float32Array, bt: Float32Array, r: number, coef: number, x: Float32Array, y: Float32Array, inp: number, out: number, u: Float32Array): void {
  matvec(u, a, x, r, inp);
  for (let k = 0; k < r; k++) u[k] *= coef;
  addTransposed(y, bt, u, r, out);
}

/**
 * y += B u with B given transposed, bt [r, out]: eight rank rows at a time along y, so y is read
 * and written once per eight. (Walking B's [out, r] rows instead, with r this short, is one
 * dependent chain of adds per output: measured 1.3-1.8x slower at the device model's shapes with
 * r = 64; eight rows at a time measured 10-30% faster than four, in Node and in Chromium.)
 */
function addTransposed(y: Float32Array, bt: Float32Array, u: Float32Array, r: number, out: number): void {
  let k = 0;
  for (; k + 7 < r; k += 8) {
    const u0 = u[k], u1 = u[k + 1], u2 = u[k + 2], u3 = u[k + 3], u4 = u[k + 4], u5 = u[k + 5], u6 = u[k + 6], u7 = u[k + 7];
    const o0 = k * out, o1 = o0 + out, o2 = o1 + out, o3 = o2 + out, o4 = o3 + out, o5 = o4 + out, o6 = o5 + out, o7 = o6 + out;
    for (let o = 0; o < out; o++) {
      y[o] += u0 * bt[o0 + o] + u1 * bt[o1 + o] + u2 * bt[o2 + o] + u3 * bt[o3 + o] + u4 * bt[o4 + o] + u5 * bt[o5 + o] + u6 * bt[o6 + o] + u7 * bt[o7 + o];
    }
  }
  for (; k < r; k++) {
    const uk = u[k];
    const ok = k * out;
    for (let o = 0; o < out; o++) y[o] += uk * bt[ok + o];
  }
}

export function checkBlend(blend: Blend, loaded: Map<string, Adapter>): void {
  if (!['delta', 'factor', 'merged'].includes(blend.mode)) throw new AppError('invalid-argument', `Unknown blend mode "${String(blend.mode)}".`);
  const ranks = new Map<string, Set<number>>(); // by projection: a factor blend sums A's (and B's) of one shape
  for (const [id, w] of Object.entries(blend.weights)) {
    if (!Number.isFinite(w)) throw new AppError('invalid-argument', `Blend weight for "${id}" is not a finite number.`);
    const a = loaded.get(id);
    if (!a) throw new AppError('not-loaded', `Adapter "${id}" is not loaded.`, { adapter: id });
    if (w !== 0) for (const [slot, p] of a.parts) ranks.set(slot, (ranks.get(slot) ?? new Set()).add(p.r));
  }
  const mixed = [...ranks].find(([, rs]) => rs.size > 1);
  if (blend.mode === 'factor' && mixed) {
    throw new AppError('invalid-argument', `A factor blend needs adapters of one rank; at ${mixed[0].replace('.', ' ')} these have ranks ${[...mixed[1]].join(', ')}.`);
  }
}
