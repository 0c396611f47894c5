// The shapes the adapter store accepts, checked where data enters (an import,
// a save) and again where it is read back (a record damaged in storage must
// not break the page). Every check throws a typed AppError that names the
// field; nothing here trusts a value's type. Sanity bounds keep out what
// parses but does harm: a scale or a weight large enough to turn every score
// into NaN, an indicator that is not a vector, an id that collides with the
// store's key scheme.
import { AppError } from '../errors';
import type { ModelConfig } from '../engine/config';
import { parseAdapter, type Adapter } from '../engine/lora';
import type { Customization, PoolManifest, StoredAdapter } from './store';

/** Pool and adapter ids: what the store's keys (`adapter:<pool>:<id>`) and file names can hold. */
export const ID_PATTERN = /^[A-Za-z0-9][\w.-]{0,99}$/;
/** alpha / r (or / sqrt r): trained LoRA adapters sit near 1-4; a thousand is already absurd. */
export const MAX_SCALE = 1000;
/** |value| of any LoRA weight; trained ones are far below 1. */
export const MAX_WEIGHT = 1000;
/** scale * max|A| * max|B| * r: a bound on any entry of the weight delta, far above a trained adapter's. */
export const MAX_DELTA = 1e4;
export const MAX_ADAPTERS = 512;
export const MAX_INDICATOR = 65_536;

const bad = (what: string, why: string, field?: string) => new AppError('bad-format', `${what}: ${why}.`, field ? { field } : undefined);

export const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

export function checkId(x: unknown, what: string, field: string): string {
  if (typeof x !== 'string' || !ID_PATTERN.test(x)) {
    throw bad(what, `its id ${typeof x === 'string' ? JSON.stringify(x.slice(0, 40)) : `is a ${x === null ? 'null' : typeof x}`} is not a name of letters, digits, "_", "." and "-" (at most 100, no ":")`, field);
  }
  return x;
}

/** An indicator: empty (not matched by similarity) or a vector of finite numbers of sane size. */
export function checkIndicator(x: unknown, what: string): number[] {
  if (!Array.isArray(x)) throw bad(what, `its indicator is ${x === null ? 'null' : `a ${typeof x}`}, not a list of numbers`, 'indicator');
  if (x.length > MAX_INDICATOR) throw bad(what, `its indicator has ${x.length} values (at most ${MAX_INDICATOR})`, 'indicator');
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > 1e6) throw bad(what, `its indicator's value ${i} is ${typeof v === 'number' ? v : JSON.stringify(v)}, not a finite number within ±1e6`, 'indicator');
  }
  return x as number[];
}

/** A pool manifest from anywhere (a file, storage): its id, base model and adapters with indicators of one length. */
export function checkManifest(x: unknown): PoolManifest {
  if (!isObject(x)) throw bad('The pool manifest', `is ${x === null ? 'null' : Array.isArray(x) ? 'a list' : `a ${typeof x}`}, not an object`);
  const id = checkId(x.id, 'The pool', 'id');
  const what = `Pool "${id}"`;
  if (typeof x.baseModel !== 'string' || x.baseModel.length > 200) throw bad(what, 'its baseModel is not a string', 'baseModel');
  if (!Array.isArray(x.adapters)) throw bad(what, 'it has no list of adapters', 'adapters');
  if (x.adapters.length > MAX_ADAPTERS) throw bad(what, `it lists ${x.adapters.length} adapters (at most ${MAX_ADAPTERS})`, 'adapters');
  const seen = new Set<string>();
  let dim = -1;
  x.adapters.forEach((a: unknown, i: number) => {
    if (!isObject(a)) throw bad(what, `adapter ${i} is ${a === null ? 'null' : `a ${typeof a}`}, not an object`, `adapters[${i}]`);
    const aid = checkId(a.id, `${what}, adapter ${i}`, `adapters[${i}].id`);
    if (seen.has(aid)) throw bad(what, `it lists adapter "${aid}" twice`, `adapters[${i}].id`);
    seen.add(aid);
    const ind = checkIndicator(a.indicator, `${what}, adapter "${aid}"`);
    if (ind.length && dim >= 0 && ind.length !== dim) throw bad(what, `adapter "${aid}" has an indicator of ${ind.length} values, the others ${dim}`, `adapters[${i}].indicator`);
    if (ind.length) dim = ind.length;
  });
  return x as unknown as PoolManifest;
}

/** A stored adapter record's shape (its contents are checked by checkAdapter). */
export function checkStoredAdapter(x: unknown, what: string): StoredAdapter {
  if (!isObject(x)) throw bad(what, `is ${x === null ? 'null' : `a ${typeof x}`}, not an adapter record`);
  checkId(x.id, what, 'id');
  if (!isObject(x.config)) throw bad(what, 'its adapter_config is not an object', 'config');
  if (!(x.weights instanceof Uint8Array)) throw bad(what, 'its weights are not bytes', 'weights');
  return x as unknown as StoredAdapter;
}

/** Parses an adapter against the base model, then bounds its scales and values: an adapter that parses but would wreck every score is refused. */
export function checkAdapter(a: StoredAdapter, base: ModelConfig): Adapter {
  checkStoredAdapter(a, `Adapter "${String((a as { id?: unknown })?.id)}"`);
  const parsed = parseAdapter(a.id, a.config, a.weights, base);
  const refuse = (why: string, extra: Record<string, unknown>) => new AppError('incompatible-adapter', `Adapter "${a.id}": ${why}; it was not imported.`, { adapter: a.id, ...extra });
  for (const [slot, p] of parsed.parts) {
    const where = slot.replace('.', ' ');
    if (!Number.isFinite(p.scale) || Math.abs(p.scale) > MAX_SCALE) throw refuse(`${where} has a scale (lora_alpha / r) of ${p.scale}, outside ±${MAX_SCALE}`, { slot, scale: p.scale });
    const maxA = maxAbs(p.a);
    const maxB = maxAbs(p.bt);
    if (maxA > MAX_WEIGHT || maxB > MAX_WEIGHT) throw refuse(`${where} has a weight of magnitude ${Math.max(maxA, maxB).toExponential(2)}, outside ±${MAX_WEIGHT}`, { slot });
    const delta = Math.abs(p.scale) * maxA * maxB * p.r;
    if (delta > MAX_DELTA) throw refuse(`${where} could change a weight by up to ${delta.toExponential(2)} (scale ${p.scale}, |A| ≤ ${maxA.toPrecision(3)}, |B| ≤ ${maxB.toPrecision(3)}, rank ${p.r}), outside ±${MAX_DELTA}`, { slot });
  }
  return parsed;
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) {
    const x = Math.abs(v[i]);
    if (x > m) m = x;
  }
  return m;
}

/** A saved assistant (customization) from storage or before saving it. */
export function checkCustomization(x: unknown): Customization {
  if (!isObject(x)) throw bad('A saved assistant', `is ${x === null ? 'null' : `a ${typeof x}`}, not an object`);
  if (typeof x.id !== 'string' || !x.id || x.id.includes(':')) throw bad('A saved assistant', 'has no valid id', 'id');
  const what = `Assistant "${x.id}"`;
  if (typeof x.name !== 'string') throw bad(what, 'has no name', 'name');
  if (typeof x.pool !== 'string') throw bad(what, 'names no pool', 'pool');
  if (!isObject(x.weights) || !Object.values(x.weights).every((w) => typeof w === 'number' && Number.isFinite(w) && Math.abs(w) <= 1e3)) throw bad(what, 'has blend weights that are not finite numbers', 'weights');
  if (x.mode !== 'delta' && x.mode !== 'factor') throw bad(what, `has blend mode ${JSON.stringify(x.mode)}`, 'mode');
  if (x.centroid !== undefined) checkIndicator(x.centroid, what);
  for (const k of ['tau', 'topK'] as const) if (typeof x[k] !== 'number' || !Number.isFinite(x[k])) throw bad(what, `has a ${k} that is not a number`, k);
  for (const k of ['created', 'examplesHash'] as const) if (typeof x[k] !== 'string') throw bad(what, `has a ${k} that is not text`, k);
  if (x.examples !== undefined && !(Array.isArray(x.examples) && x.examples.every((e) => isObject(e) && typeof e.input === 'string' && typeof e.output === 'string'))) throw bad(what, 'has examples that are not {input, output} text', 'examples');
  return x as unknown as Customization;
}
