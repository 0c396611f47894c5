// `npm run bench:route`: Crayon's device–server routing on the reference world.
// For each customized task, the device is customized from 5 train examples
// (Crayon blend, τ/top-k from bench:blend's calibration) and the server gets
// the same weights for its own pool (real llama.cpp server on 127.0.0.1).
// Queries: the task's own items (in scope) and as many items of pool tasks
// (out of scope: not what the user customized for). Each query is answered
// by both sides once, multiple choice and free form, with the signals the
// router uses; the routing policy is then replayed offline over threshold
// sweeps with the router's own decide(). Thresholds are chosen on validation
// splits and reported on test splits. Writes bench/results/routing.json and
// the plot routing.svg; bench:report turns the thresholds into the app's defaults.
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createCrayonServer, DEFAULT_CONFIG } from '../server/app';
import { loadPool, ServerModel } from '../server/llama';
import { CrayonEngine } from '../src/lib/engine/engine';
import { loadCheckpoint } from '../src/lib/engine/loader';
import { fsSource, readAdapterDir } from '../src/lib/engine/testing/fs-source';
import { crayonBlend, type Indicator } from '../src/lib/pool/blend';
import { embedExamples } from '../src/lib/pool/customize';
import { OpenAiClient } from '../src/lib/remote/openai-client';
import { matchPool } from '../src/lib/router/host';
import { cosine, decide, type Thresholds } from '../src/lib/router/policy';
import { softmaxTop } from '../src/lib/router/router';
import { deviceSide, serverSide } from '../src/lib/router/sides';
import { worldDir } from '../training/world-dir';
import { writeResult } from './results';
import { shuffle } from './stats';
import { routingSvg } from './route-plot';

const K = 5;
const PER_TASK = Number(process.env.PER_TASK ?? 60); // at most this many of the task's own items per split
const OTHER_SHARE = 0.2; // the share of the stream made of other tasks' items (non-customized queries)
const BUDGET = 0.3; // the operating point: at most 30% of queries to the server

interface Item { question: string; options: string[]; answer: number; answer_text: string }
interface Observation {
  task: string;
  inScope: boolean;
  scope: number;
  // server: the server model with the customization's blend; serverBase: the same server without it.
  mc: { device: boolean; server: boolean; serverBase: boolean; topProb: number; logps: number[] };
  free: { device: boolean; server: boolean; serverBase: boolean; meanLogprob: number };
}

const world = worldDir();
const tasks = JSON.parse(readFileSync(`${world}/tasks/index.json`, 'utf8')) as { name: string; customized: boolean }[];
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: (Indicator & { path: string; indicator: number[] })[] };
const split = (task: string, s: string): Item[] => readFileSync(`${world}/tasks/${task}/${s}.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const customTasks = tasks.filter((t) => t.customized).map((t) => t.name);
const poolTasks = tasks.filter((t) => !t.customized).map((t) => t.name);
// τ and top-k: bench:blend's calibrated choice, or BLEND_TAU / BLEND_TOPK (to run both benchmarks side by side).
const blendCal = process.env.BLEND_TAU
  ? { tau: Number(process.env.BLEND_TAU), topK: Number(process.env.BLEND_TOPK ?? 0) }
  : existsSync('bench/results/blending.json') ? JSON.parse(readFileSync('bench/results/blending.json', 'utf8')).calibration.chosen : { tau: 0.02, topK: 0 };

const norm = (s: string) => s.trim().toLowerCase();

interface Sides { engine: CrayonEngine; device: ReturnType<typeof deviceSide>; client: OpenAiClient; serverPools: Awaited<ReturnType<OpenAiClient['pools']>> }

async function observe({ engine, device, client, serverPools }: Sides, splitName: 'validation' | 'test'): Promise<Observation[]> {
  const out: Observation[] = [];
  for (const [ti, t] of customTasks.entries()) {
    const examples = split(t, 'train').slice(0, K).map((it) => ({ input: it.question, output: it.answer_text }));
    const cz = crayonBlend(await embedExamples(engine, examples), pool.adapters, blendCal);
    await engine.setBlend({ mode: 'merged', weights: cz.blend.weights });
    const czId = await client.createCustomization(matchPool(serverPools, Object.keys(cz.blend.weights))!, cz.blend.weights);
    const server = serverSide(client, 'crayon-server', async () => czId ?? undefined);
    const serverBase = serverSide(client, 'crayon-server', async () => undefined);
    const own = shuffle(split(t, splitName), ti).slice(0, PER_TASK).map((it) => ({ it, task: t, inScope: true }));
    const nOthers = Math.round((own.length * OTHER_SHARE) / (1 - OTHER_SHARE));
    const others = shuffle(poolTasks.flatMap((p) => split(p, splitName).map((it) => ({ it, task: p, inScope: false }))), 100 + ti).slice(0, nOthers);
    for (const { it, task, inScope } of [...own, ...others]) {
      const messages = [{ role: 'user' as const, content: it.question }];
      const scope = cosine(await device.embedQuery(messages), cz.centroid);
      const logps = await device.scoreOptions(messages, it.options);
      const { index: dChoice, prob: topProb } = softmaxTop(logps); // the router's own confidence
      const sChoice = await server.chooseOption(messages, it.options);
      const dFree = await device.generate(messages, { maxTokens: 8 });
      const sFree = await server.generate(messages, { maxTokens: 8 });
      const bChoice = await serverBase.chooseOption(messages, it.options);
      const bFree = await serverBase.generate(messages, { maxTokens: 8 });
      const right = (text: string) => norm(text) === norm(it.answer_text);
      out.push({
        task, inScope, scope,
        mc: { device: dChoice === it.answer, server: sChoice === it.answer, serverBase: bChoice === it.answer, topProb, logps },
        free: { device: right(dFree.text), server: right(sFree.text), serverBase: right(bFree.text), meanLogprob: Math.max(-50, dFree.meanLogprob) },
      });
    }
    await engine.setBlend(null);
    console.log(`${splitName} ${t}: ${out.length} queries`);
  }
  return out;
}

/** Every query of both splits answered by both sides: the device engine on CPU, the reference server over HTTP. */
async function observeAll(): Promise<{ validation: Observation[]; test: Observation[] }> {
  const engine = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend: 'cpu' });
  for (const a of pool.adapters) await engine.loadAdapter(a.id, readAdapterDir(`${world}/device-pool/${a.path}`));
  const model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 2, sequences: 1, contextSize: 256 });
  const http = createCrayonServer(model, { ...DEFAULT_CONFIG, rateLimit: { capacity: 1e6, refillPerSec: 1e6 } });
  const base = await new Promise<string>((r) => http.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(http.address() as AddressInfo).port}/v1`)));
  const client = new OpenAiClient({ baseUrl: base, fetch, timeoutMs: 60_000 });
  const sides: Sides = { engine, device: deviceSide(engine), client, serverPools: await client.pools() };
  try {
    return { validation: await observe(sides, 'validation'), test: await observe(sides, 'test') };
  } finally {
    http.close();
    await model.dispose();
    await engine.unload();
  }
}

/** Hybrid accuracy and server share of the auto policy at some thresholds (the router's own decide()). */
function replay(obs: Observation[], th: Thresholds, kind: 'mc' | 'free') {
  let right = 0;
  let server = 0;
  for (const o of obs) {
    const confidence = kind === 'mc' ? { kind: 'mc' as const, topProb: o.mc.topProb } : { kind: 'free' as const, meanLogprob: o.free.meanLogprob };
    const d = decide('auto', th, { scope: o.scope, confidence });
    const onServer = d.route === 'server';
    server += onServer ? 1 : 0;
    right += (onServer ? (d.customizedServer ? o[kind].server : o[kind].serverBase) : o[kind].device) ? 1 : 0;
  }
  return { acc: right / obs.length, serverShare: server / obs.length };
}

const uniq = (xs: number[]) => [...new Set(xs.map((x) => Math.round(x * 1e4) / 1e4))].sort((a, b) => a - b);

type Kind = 'mc' | 'free';
const confOf = (o: Observation, kind: Kind) => (kind === 'mc' ? o.mc.topProb : o.free.meanLogprob);
const thresholdsAt = (scope: number, c: number, kind: Kind): Thresholds => ({ scope, mcConfidence: kind === 'mc' ? c : 0, freeConfidence: kind === 'free' ? c : -50 });
function quantiles(xs: number[], n: number): number[] {
  const v = [...xs].sort((a, b) => a - b);
  return uniq(Array.from({ length: n + 1 }, (_, i) => v[Math.min(v.length - 1, Math.floor((i / n) * v.length))]));
}

/** Auto over a grid of scope × confidence thresholds: every (share, accuracy) point and its thresholds. */
function grid(obs: Observation[], kind: Kind) {
  const scopes = [-1.01, ...quantiles(obs.map((o) => o.scope), 30), 1.01];
  const confs = [kind === 'mc' ? 0 : -50, ...quantiles(obs.map((o) => confOf(o, kind)), 30), kind === 'mc' ? 1.01 : 0.01];
  return scopes.flatMap((sc) => confs.map((c) => ({ thresholds: thresholdsAt(sc, c, kind), ...replay(obs, thresholdsAt(sc, c, kind), kind) })));
}

/** The best accuracy reached at each share (the upper frontier), by increasing share. */
function frontier<P extends { serverShare: number; acc: number }>(points: P[]): P[] {
  const sorted = [...points].sort((a, b) => a.serverShare - b.serverShare || b.acc - a.acc);
  const out: typeof sorted = [];
  for (const p of sorted) if (!out.length || p.acc > out[out.length - 1].acc) out.push(p);
  return out;
}

/** The frontier's point at the budget: the best accuracy with at most BUDGET of queries sent. */
const atBudget = <P extends { serverShare: number }>(front: P[]): P => front.filter((p) => p.serverShare <= BUDGET).pop()!;

const accOf = (obs: Observation[], kind: Kind, side: 'device' | 'server' | 'serverBase') => obs.filter((o) => o[kind][side]).length / obs.length;
/** Random routing at share p: each query goes to the server with probability p (its expected accuracy). */
const randomAt = (obs: Observation[], kind: Kind, p: number) => (1 - p) * accOf(obs, kind, 'device') + p * accOf(obs, kind, 'server');

/**
 * Defaults: on validation, the thresholds with the best accuracy that send at most BUDGET of queries to the server.
 * `scope`, if given, is held fixed: only the confidence threshold is chosen.
 */
function calibrate(obs: Observation[], kind: Kind, scope?: number): Thresholds {
  const ok = grid(obs, kind).filter((p) => p.serverShare <= BUDGET && (scope === undefined || p.thresholds.scope === scope));
  return ok.reduce((b, p) => (p.acc > b.acc || (p.acc === b.acc && p.serverShare < b.serverShare) ? p : b)).thresholds;
}

function report(obs: Observation[], kind: Kind, th: Thresholds) {
  const device = accOf(obs, kind, 'device');
  const server = accOf(obs, kind, 'server');
  const front = frontier(grid(obs, kind));
  const at30 = atBudget(front);
  const auto = front.map((p) => ({ serverShare: p.serverShare, acc: p.acc, random: randomAt(obs, kind, p.serverShare), thresholds: p.thresholds }));
  return {
    device_acc: device,
    server_acc: server,
    auto_acc_at_30pct: at30.acc,
    auto_share_at_30pct: at30.serverShare,
    gap_recovered_at_30pct: server > device ? (at30.acc - device) / (server - device) : null,
    // Every point of auto's curve strictly inside (0, 1) beats random routing at the same share.
    beats_random_everywhere: auto.filter((p) => p.serverShare > 0 && p.serverShare < 1).every((p) => p.acc > p.random),
    calibrated: { thresholds: th, ...replay(obs, th, kind) },
    curve: auto,
  };
}

// The observations are the expensive part; ROUTE_REPLAY=1 reuses the last run's (bench/tmp) to re-run the analysis.
const OBS_PATH = 'bench/tmp/routing-observations.json';
const replayed = process.env.ROUTE_REPLAY === '1';
const observed = replayed
  ? (JSON.parse(readFileSync(OBS_PATH, 'utf8')) as { validation: Observation[]; test: Observation[]; measuredAt: string; blend: typeof blendCal })
  : { ...(await observeAll()), measuredAt: new Date().toISOString(), blend: blendCal };
if (!replayed) {
  mkdirSync('bench/tmp', { recursive: true });
  writeFileSync(OBS_PATH, JSON.stringify(observed));
}
const { validation: val, test } = observed;
// One scope threshold serves both kinds: the multiple-choice one (the benchmark's primary measure);
// the free-form confidence threshold is then chosen under it.
const thMc = calibrate(val, 'mc');
const thFree = calibrate(val, 'free', thMc.scope);
const thresholds: Thresholds = { scope: thMc.scope, mcConfidence: thMc.mcConfidence, freeConfidence: thFree.freeConfidence };
console.log('calibrated thresholds', thresholds);
const inScope = test.filter((o) => o.inScope);
const scopeTest = { tpr: inScope.filter((o) => o.scope >= thresholds.scope).length / inScope.length, fpr: test.filter((o) => !o.inScope && o.scope >= thresholds.scope).length / (test.length - inScope.length) };
const mc = report(test, 'mc', thresholds);
const free = report(test, 'free', thresholds);
/** P(a random x from `pos` scores above a random one from `neg`): 0.5 = the signal tells nothing. */
function auc(pos: number[], neg: number[]): number {
  let s = 0;
  for (const p of pos) for (const n of neg) s += p > n ? 1 : p === n ? 0.5 : 0;
  return s / (pos.length * neg.length);
}

/**
 * Routing that knows something true about whole groups of queries and nothing about single ones: each stream's
 * in-scope items are one group, its out-of-scope items another. Groups go to the server in order, the last one in
 * part (a random share of it: its expected gain), up to the budget. `gain`: by the true gain per query (server
 * right minus device right), best first. `device`: every out-of-scope group first (a perfect scope signal), then
 * the in-scope groups by the device's true accuracy on them, lowest first (a perfect self-assessment per task).
 */
function perGroupOracleAt(obs: Observation[], kind: Kind, order: 'gain' | 'device'): number {
  const groups = new Map<string, { inScope: boolean; n: number; device: number; gain: number }>();
  let stream = ''; // observe() writes each stream's own items, then its out-of-scope ones
  for (const o of obs) {
    if (o.inScope) stream = o.task;
    const key = `${stream}:${o.inScope ? 'in' : 'out'}`;
    const g = groups.get(key) ?? { inScope: o.inScope, n: 0, device: 0, gain: 0 };
    g.n++;
    g.device += Number(o[kind].device);
    g.gain += Number(o.inScope ? o[kind].server : o[kind].serverBase) - Number(o[kind].device);
    groups.set(key, g);
  }
  const ranked = [...groups.values()].sort(order === 'gain'
    ? (a, b) => b.gain / b.n - a.gain / a.n
    : (a, b) => Number(a.inScope) - Number(b.inScope) || a.device / a.n - b.device / b.n);
  let room = BUDGET * obs.length;
  let gained = 0;
  for (const g of ranked) {
    if (order === 'gain' && g.gain <= 0) break;
    const take = Math.min(g.n, room);
    gained += (g.gain * take) / g.n;
    room -= take;
  }
  return accOf(obs, kind, 'device') + gained / obs.length;
}

/** How much each routing signal can tell, and what perfect routing would reach at the budget. */
function signals(obs: Observation[], kind: Kind) {
  const inScope = obs.filter((o) => o.inScope);
  const right = inScope.filter((o) => o[kind].device);
  const wrong = inScope.filter((o) => !o[kind].device);
  const gainable = obs.filter((o) => (o.inScope ? o[kind].server : o[kind].serverBase) && !o[kind].device).length / obs.length;
  const device = accOf(obs, kind, 'device');
  const server = accOf(obs, kind, 'server');
  return {
    scope_auc_in_vs_out: auc(inScope.map((o) => o.scope), obs.filter((o) => !o.inScope).map((o) => o.scope)),
    confidence_auc_device_right_vs_wrong_in_scope: auc(right.map((o) => confOf(o, kind)), wrong.map((o) => confOf(o, kind))),
    // Perfect routing: the server gets exactly the queries it answers right and the device doesn't, up to the budget.
    oracle_acc_at_30pct: device + Math.min(gainable, BUDGET),
    oracle_gap_recovered_at_30pct: server > device ? Math.min(gainable, BUDGET) / (server - device) : null,
    // For scale, routers that know more than the device can:
    // the true in/out-of-scope label in place of the similarity, the device's confidence as it is;
    perfect_scope_gap_recovered_at_30pct: server > device ? (atBudget(frontier(grid(obs.map((o) => ({ ...o, scope: o.inScope ? 1 : -1 })), kind))).acc - device) / (server - device) : null,
    // the true gain of whole groups (perGroupOracleAt), nothing about single queries;
    per_group_oracle_gap_recovered_at_30pct: server > device ? (perGroupOracleAt(obs, kind, 'gain') - device) / (server - device) : null,
    // perfect scope, then the customized tasks the device is truly worst at.
    perfect_scope_and_task_accuracy_gap_recovered_at_30pct: server > device ? (perGroupOracleAt(obs, kind, 'device') - device) / (server - device) : null,
    out_of_scope: { share: 1 - inScope.length / obs.length, device_acc: accOf(obs.filter((o) => !o.inScope), kind, 'device'), server_acc: accOf(obs.filter((o) => !o.inScope), kind, 'server'), server_general_acc: accOf(obs.filter((o) => !o.inScope), kind, 'serverBase') },
    in_scope: { device_acc: accOf(inScope, kind, 'device'), server_acc: accOf(inScope, kind, 'server') },
  };
}

const result = {
  setup: { tasks: customTasks, queries: test.length, otherTaskShare: OTHER_SHARE, examples: K, blend: observed.blend, budget: BUDGET, server: 'reference server (llama.cpp via node-llama-cpp) over HTTP on 127.0.0.1, its pool blended by the same weights', device: 'CrayonEngine cpu, Crayon blend merged', answers: 'multiple choice (device: option log-likelihood; server: its reply matched to an option); free form: exact match', observedAt: observed.measuredAt, replayed },
  device_acc: mc.device_acc,
  server_acc: mc.server_acc,
  auto_acc_at_30pct: mc.auto_acc_at_30pct,
  gap_recovered_at_30pct: mc.gap_recovered_at_30pct,
  beats_random_everywhere: mc.beats_random_everywhere,
  thresholds,
  scope: { test: scopeTest },
  signals: { validation: { mc: signals(val, 'mc'), free: signals(val, 'free') }, test: { mc: signals(test, 'mc'), free: signals(test, 'free') } },
  test: { mc, free },
};
writeResult('routing', result);
writeFileSync('bench/results/routing.svg', routingSvg(mc, 'Multiple choice, test split: accuracy against the share sent to the server'));
console.log(JSON.stringify({ thresholds, device_acc: mc.device_acc, server_acc: mc.server_acc, auto_acc_at_30pct: mc.auto_acc_at_30pct, gap_recovered_at_30pct: mc.gap_recovered_at_30pct, beats_random_everywhere: mc.beats_random_everywhere }, null, 2));
