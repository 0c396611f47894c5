// `npm run bench:blend`: Crayon's instant blend against the baselines on every
// customized task of the reference world, with the device model on CPU in Node.
// For each task and seed, k = 5 examples are drawn from the task's train split;
// each method turns them into a blend, and the blend is scored by multiple-
// choice accuracy on the task's whole test split (log-likelihood of each option
// and the end token, as the world builder scores). τ and top-k are chosen first
// on the pool tasks' validation data only. Writes bench/results/blending.json.
import { readFileSync } from 'node:fs';
import { CrayonEngine } from '../src/lib/engine/engine';
import type { Blend } from '../src/lib/engine/lora';
import { loadCheckpoint } from '../src/lib/engine/loader';
import { fsSource, readAdapterDir } from '../src/lib/engine/testing/fs-source';
import { crayonBlend, lorahubBlend, noHarmCheck, singleBest, uniformBlend, type Indicator } from '../src/lib/pool/blend';
import { embedExamples, exampleLoss } from '../src/lib/pool/customize';
import type { Example } from '../src/lib/pool/examples';
import { worldDir } from '../training/world-dir';
import { median, writeResult } from './results';
import { shuffle } from './stats';

const K = 5;
const SEEDS = Number(process.env.SEEDS ?? 5);
const CAL_SEEDS = Number(process.env.CAL_SEEDS ?? 2);
const CAL_ITEMS = Number(process.env.CAL_ITEMS ?? 20); // validation items scored per pool task and seed
const TAUS = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];
const TOPKS = [0, 2, 3]; // 0 = all; 1 is the single-best baseline
// Diagnostics on the customized tasks (reported to show how much the choices matter; never used to choose):
// Crayon's weights as a factor blend, and Crayon at other temperatures than the calibrated one.
const DIAG_TAUS = [0.005, 0.02, 0.1];
const END = '<|end|>';

interface Item { question: string; options: string[]; answer: number; answer_text: string }
// crayon_checked: Crayon's blend with the no-harm check (falls back to the base model when the
// blend raises the examples' loss); a variant beside the method the issue defines, not in its place.
type Method = 'base' | 'single' | 'uniform' | 'lorahub' | 'crayon' | 'crayon_checked' | 'oracle';

const world = worldDir();
const tasks = JSON.parse(readFileSync(`${world}/tasks/index.json`, 'utf8')) as { name: string; customized: boolean }[];
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: (Indicator & { path: string; indicator: number[] })[] };
const ids = pool.adapters.map((a) => a.id);
const split = (task: string, s: string): Item[] => readFileSync(`${world}/tasks/${task}/${s}.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const customTasks = tasks.filter((t) => t.customized).map((t) => t.name);
const poolTasks = tasks.filter((t) => !t.customized).map((t) => t.name);

const engine = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend: 'cpu' });
for (const a of pool.adapters) await engine.loadAdapter(a.id, readAdapterDir(`${world}/device-pool/${a.path}`));
for (const t of customTasks) await engine.loadAdapter(`oracle-${t}`, readAdapterDir(`${world}/device-oracle/${t}`));

/** Draws k distinct items with a seeded generator. */
const draw = <T>(xs: T[], k: number, seed: number): T[] => shuffle(xs, seed).slice(0, k);

const asExamples = (items: Item[]): Example[] => items.map((it) => ({ input: it.question, output: it.answer_text }));

/** Delta blends are scored merged (the same function, baked in: fastest); factor blends unmerged. */
async function accuracy(items: Item[], blend: Blend | null): Promise<number> {
  await engine.setBlend(blend && blend.mode === 'delta' ? { ...blend, mode: 'merged' } : blend);
  let right = 0;
  for (const it of items) {
    const { sum } = await engine.score({ messages: [{ role: 'user', content: it.question }] }, it.options.map((o) => o + END));
    if (sum.indexOf(Math.max(...sum)) === it.answer) right++;
  }
  await engine.setBlend(null);
  return right / items.length;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const key = (w: Record<string, number>) => ids.map((id) => (w[id] ?? 0).toFixed(3)).join(',');

// 1. Calibrate τ and top-k on the pool tasks' validation split: examples and scored items both from validation, disjoint.
// Two protocols, both on pool tasks only. 'in-pool': the whole pool, as it is. 'held-out': for each pool task the
// adapters trained on it (those holding at least 10% of its train items) are left out, so the calibration task has no
// adapter of its own, as a customized task has none; this one chooses, because that is the condition Crayon is used in.
// (Decided before any held-out result on the customized tasks was seen: the in-pool protocol always prefers the
// sharpest τ, since there the nearest adapter is the task's own.)
/** The adapter whose indicator is nearest to one example's feature (the builder's cluster assignment rule). */
const nearest = (f: ArrayLike<number>): string => {
  const { weights } = singleBest([f], pool.adapters);
  return Object.keys(weights).find((id) => weights[id] > 0)!;
};
async function ownAdapters(t: string): Promise<Set<string>> {
  const train = split(t, 'train');
  const counts = new Map<string, number>();
  for (const f of await embedExamples(engine, asExamples(train))) {
    const id = nearest(f);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return new Set([...counts].filter(([, n]) => n >= 0.1 * train.length).map(([id]) => id));
}
type Protocol = 'in_pool' | 'held_out';
console.log(`calibrating tau x top-k on ${poolTasks.length} pool tasks' validation data`);
const grid = TAUS.flatMap((tau) => TOPKS.map((topK) => ({ tau, topK })));
const calAcc: Record<Protocol, Map<string, number[]>> = { in_pool: new Map(grid.map((g) => [`${g.tau}/${g.topK}`, []])), held_out: new Map(grid.map((g) => [`${g.tau}/${g.topK}`, []])) };
const leftOut: Record<string, string[]> = {};
for (const t of poolTasks) {
  const val = split(t, 'validation');
  const own = await ownAdapters(t);
  leftOut[t] = [...own];
  const pools: Record<Protocol, Indicator[]> = { in_pool: pool.adapters, held_out: pool.adapters.filter((a) => !own.has(a.id)) };
  for (let s = 0; s < CAL_SEEDS; s++) {
    const shuffled = draw(val, val.length, 1000 + s);
    const ex = asExamples(shuffled.slice(0, K));
    const scored = shuffled.slice(K, K + CAL_ITEMS);
    const feats = await embedExamples(engine, ex);
    const cache = new Map<string, number>(); // grid points that give the same weights are scored once
    for (const protocol of ['in_pool', 'held_out'] as const) {
      for (const g of grid) {
        const r = crayonBlend(feats, pools[protocol], g);
        const k = key(r.weights);
        if (!cache.has(k)) cache.set(k, await accuracy(scored, r.blend));
        calAcc[protocol].get(`${g.tau}/${g.topK}`)!.push(cache.get(k)!);
      }
    }
  }
  console.log(`  ${t} (left out for held-out: ${leftOut[t].join(', ')})`);
}
const calibrationOf = (p: Protocol) => grid.map((g) => ({ ...g, acc: mean(calAcc[p].get(`${g.tau}/${g.topK}`)!) }));
const best = (cal: ReturnType<typeof calibrationOf>) => cal.reduce((b, c) => (c.acc > b.acc ? c : b));
const calibration = calibrationOf('held_out');
const inPoolCalibration = calibrationOf('in_pool');
const chosen = best(calibration);
const inPoolChoice = best(inPoolCalibration);
console.log(`chosen (held-out protocol): tau ${chosen.tau}, top-k ${chosen.topK} (validation acc ${chosen.acc.toFixed(3)}); the in-pool protocol would choose tau ${inPoolChoice.tau}, top-k ${inPoolChoice.topK}`);

// 2. The methods on the customized tasks' test split.
const acc: Record<Method, number[]> = { base: [], single: [], uniform: [], lorahub: [], crayon: [], crayon_checked: [], oracle: [] };
let kept = 0;
const diag: Record<string, number[]> = { factor: [], ...Object.fromEntries(DIAG_TAUS.map((t) => [`tau_${t}`, []])) };
const diagPerTask: Record<string, Record<string, number>> = {};
const perTask: Record<string, Record<Method, number>> = {};
const time: { crayon: number[]; crayonWeights: number[]; crayonChecked: number[]; lorahub: number[] } = { crayon: [], crayonWeights: [], crayonChecked: [], lorahub: [] };
for (const t of customTasks) {
  const test = split(t, 'test');
  const train = split(t, 'train');
  const row: Record<Method, number[]> = { base: [], single: [], uniform: [], lorahub: [], crayon: [], crayon_checked: [], oracle: [] };
  row.base.push(await accuracy(test, null));
  row.oracle.push(await accuracy(test, { mode: 'delta', weights: { [`oracle-${t}`]: 1 } }));
  row.uniform.push(await accuracy(test, uniformBlend(pool.adapters)));
  const d: Record<string, number[]> = Object.fromEntries(Object.keys(diag).map((k) => [k, []]));
  for (let s = 0; s < SEEDS; s++) {
    const ex = asExamples(draw(train, K, s));
    const t0 = performance.now();
    const feats = await embedExamples(engine, ex);
    const t1 = performance.now();
    const crayon = crayonBlend(feats, pool.adapters, chosen);
    const t2 = performance.now();
    time.crayon.push(t2 - t0);
    time.crayonWeights.push(t2 - t1);
    const checked = await noHarmCheck(crayon.blend, (b) => exampleLoss(engine, ex, b));
    time.crayonChecked.push(performance.now() - t0);
    if (checked.kept) kept++;
    const t3 = performance.now();
    const hub = await lorahubBlend(ids, (b) => exampleLoss(engine, ex, b), { seed: s });
    time.lorahub.push(performance.now() - t3);
    row.crayon.push(await accuracy(test, crayon.blend));
    row.crayon_checked.push(checked.kept ? row.crayon[row.crayon.length - 1] : row.base[0]);
    row.single.push(await accuracy(test, singleBest(feats, pool.adapters).blend));
    row.lorahub.push(await accuracy(test, hub.blend));
    d.factor.push(await accuracy(test, { ...crayon.blend, mode: 'factor' }));
    for (const tau of DIAG_TAUS) d[`tau_${tau}`].push(await accuracy(test, crayonBlend(feats, pool.adapters, { ...chosen, tau }).blend));
  }
  diagPerTask[t] = Object.fromEntries(Object.entries(d).map(([k, xs]) => [k, mean(xs)]));
  for (const k of Object.keys(diag)) diag[k].push(diagPerTask[t][k]);
  perTask[t] = Object.fromEntries(Object.entries(row).map(([m, xs]) => [m, mean(xs)])) as Record<Method, number>;
  for (const m of Object.keys(acc) as Method[]) acc[m].push(perTask[t][m]);
  console.log(`${t}: ${Object.entries(perTask[t]).map(([m, v]) => `${m} ${v.toFixed(3)}`).join('  ')}`);
}

const accMean = Object.fromEntries(Object.entries(acc).map(([m, xs]) => [m, mean(xs)])) as Record<Method, number>;
const timeMs = { crayon: median(time.crayon), crayon_weights_only: median(time.crayonWeights), crayon_checked: median(time.crayonChecked), lorahub: median(time.lorahub) };
const out = writeResult('blending', {
  setup: { examples: K, seeds: SEEDS, tasks: customTasks, testItemsPerTask: split(customTasks[0], 'test').length, backend: 'cpu (Node)', lorahub: { steps: 40, l1: 0.05, bound: 1.5, optimizer: 'CMA-ES', mode: 'factor' }, crayonMode: 'delta' },
  calibration: {
    protocol: 'held-out: each pool task scored with the adapters trained on it (>= 10% of its train items) left out of the pool',
    chosen: { tau: chosen.tau, topK: chosen.topK, validationAcc: chosen.acc }, grid: calibration, leftOut,
    in_pool: { note: 'the whole pool, each task\'s own adapter included (not used to choose)', best: inPoolChoice, grid: inPoolCalibration },
    poolTasks, seeds: CAL_SEEDS, itemsPerTask: CAL_ITEMS,
  },
  acc: accMean,
  crayon_checked_kept: { kept, of: customTasks.length * SEEDS },
  per_task: perTask,
  diagnostics: {
    note: 'Crayon variants on the customized tasks, reported only: tau and top-k were chosen on the pool tasks before these ran and are not changed by them',
    acc: Object.fromEntries(Object.entries(diag).map(([k, xs]) => [k, mean(xs)])),
    per_task: diagPerTask,
  },
  time_ms: timeMs,
  targets: {
    crayon_ge_lorahub: accMean.crayon >= accMean.lorahub,
    crayon_ge_single_plus_0_02: accMean.crayon >= accMean.single + 0.02,
    crayon_time_le_lorahub_over_100: timeMs.crayon <= timeMs.lorahub / 100,
    crayon_weights_le_50ms: timeMs.crayon_weights_only <= 50,
  },
  paper_device_model_pct: { single: 40.7, lorahub: 42.4, crayon: 44.6 },
});
console.log(JSON.stringify({ acc: accMean, time_ms: timeMs }, null, 2));
console.log(`wrote ${out}`);
await engine.unload();
