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
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createCrayonServer, DEFAULT_CONFIG } from '../server/app';
import { loadPool, ServerModel } from '../server/llama';
import { CrayonEngine } from '../src/lib/engine/engine';
import { loadCheckpoint } from '../src/lib/engine/loader';
import { rng } from '../src/lib/engine/sampler';
import { fsSource, readAdapterDir } from '../src/lib/engine/testing/fs-source';
import { crayonBlend, type Indicator } from '../src/lib/pool/blend';
import { embedExamples } from '../src/lib/pool/customize';
import { OpenAiClient } from '../src/lib/remote/openai-client';
import { matchPool } from '../src/lib/router/host';
import { cosine, decide, type Thresholds } from '../src/lib/router/policy';
import { deviceSide, serverSide } from '../src/lib/router/sides';
import { worldDir } from '../training/world-dir';
import { writeResult } from './results';
import { routingSvg } from './route-plot';

const K = 5;
const PER_TASK = Number(process.env.PER_TASK ?? 40); // in-scope items per task and split (as many out of scope)
const MAX_SERVER_SHARE = 0.5; // calibration: the device must keep at least half of the in-scope queries

interface Item { question: string; options: string[]; answer: number; answer_text: string }
interface Observation {
  task: string;
  inScope: boolean;
  scope: number;
  mc: { device: boolean; server: boolean; topProb: number };
  free: { device: boolean; server: boolean; meanLogprob: number };
}

const world = worldDir();
const tasks = JSON.parse(readFileSync(`${world}/tasks/index.json`, 'utf8')) as { name: string; customized: boolean }[];
const pool = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { adapters: (Indicator & { path: string; indicator: number[] })[] };
const split = (task: string, s: string): Item[] => readFileSync(`${world}/tasks/${task}/${s}.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const customTasks = tasks.filter((t) => t.customized).map((t) => t.name);
const poolTasks = tasks.filter((t) => !t.customized).map((t) => t.name);
const blendCal = existsSync('bench/results/blending.json') ? JSON.parse(readFileSync('bench/results/blending.json', 'utf8')).calibration.chosen : { tau: 0.02, topK: 0 };

function shuffle<T>(xs: T[], seed: number): T[] {
  const u = rng(seed);
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
const norm = (s: string) => s.trim().toLowerCase();

// The two sides, real: the device engine on CPU, the reference server over HTTP.
const engine = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend: 'cpu' });
for (const a of pool.adapters) await engine.loadAdapter(a.id, readAdapterDir(`${world}/device-pool/${a.path}`));
const model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 2, sequences: 1, contextSize: 256 });
const http = createCrayonServer(model, { ...DEFAULT_CONFIG, rateLimit: { capacity: 1e6, refillPerSec: 1e6 } });
const base = await new Promise<string>((r) => http.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(http.address() as AddressInfo).port}/v1`)));
const client = new OpenAiClient({ baseUrl: base, fetch, timeoutMs: 60_000 });
const serverPools = await client.pools();
const device = deviceSide(engine);

async function observe(splitName: 'validation' | 'test'): Promise<Observation[]> {
  const out: Observation[] = [];
  for (const [ti, t] of customTasks.entries()) {
    const examples = split(t, 'train').slice(0, K).map((it) => ({ input: it.question, output: it.answer_text }));
    const cz = crayonBlend(await embedExamples(engine, examples), pool.adapters, blendCal);
    await engine.setBlend({ mode: 'merged', weights: cz.blend.weights });
    const czId = await client.createCustomization(matchPool(serverPools, Object.keys(cz.blend.weights))!, cz.blend.weights);
    const server = serverSide(client, 'crayon-server', async () => czId ?? undefined);
    const own = shuffle(split(t, splitName), ti).slice(0, PER_TASK).map((it) => ({ it, task: t, inScope: true }));
    const others = shuffle(poolTasks.flatMap((p) => split(p, splitName).map((it) => ({ it, task: p, inScope: false }))), 100 + ti).slice(0, PER_TASK);
    for (const { it, task, inScope } of [...own, ...others]) {
      const messages = [{ role: 'user' as const, content: it.question }];
      const scope = cosine(await device.embedQuery(messages), cz.centroid);
      const logps = await device.scoreOptions(messages, it.options);
      const max = Math.max(...logps);
      const probs = logps.map((l) => Math.exp(l - max));
      const topProb = 1 / probs.reduce((a, b) => a + b, 0);
      const dChoice = logps.indexOf(max);
      const sChoice = await server.chooseOption(messages, it.options);
      const dFree = await device.generate(messages, { maxTokens: 8 });
      const sFree = await server.generate(messages, { maxTokens: 8 });
      out.push({
        task, inScope, scope,
        mc: { device: dChoice === it.answer, server: sChoice === it.answer, topProb },
        free: { device: norm(dFree.text) === norm(it.answer_text), server: norm(sFree.text) === norm(it.answer_text), meanLogprob: Math.max(-50, dFree.meanLogprob) },
      });
    }
    await engine.setBlend(null);
    console.log(`${splitName} ${t}: ${out.length} queries`);
  }
  return out;
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
    right += (onServer ? o[kind].server : o[kind].device) ? 1 : 0;
  }
  return { acc: right / obs.length, serverShare: server / obs.length };
}

const uniq = (xs: number[]) => [...new Set(xs.map((x) => Math.round(x * 1e4) / 1e4))].sort((a, b) => a - b);

/** Scope threshold: best separation of in-scope from out-of-scope queries (Youden's J). */
function calibrateScope(obs: Observation[]): { threshold: number; j: number } {
  let best = { threshold: -1, j: -Infinity };
  for (const s of uniq(obs.map((o) => o.scope))) {
    const tpr = obs.filter((o) => o.inScope && o.scope >= s).length / obs.filter((o) => o.inScope).length;
    const fpr = obs.filter((o) => !o.inScope && o.scope >= s).length / obs.filter((o) => !o.inScope).length;
    if (tpr - fpr > best.j) best = { threshold: s, j: tpr - fpr };
  }
  return best;
}

/**
 * Confidence threshold: the best hybrid accuracy over all queries such that
 * the device still answers at least 1 − MAX_SERVER_SHARE of the in-scope ones
 * (what the user customized it for); out-of-scope queries go up by scope anyway.
 */
function calibrateConfidence(obs: Observation[], scope: number, kind: 'mc' | 'free'): number {
  const own = obs.filter((o) => o.inScope);
  const values = uniq(obs.map((o) => (kind === 'mc' ? o.mc.topProb : o.free.meanLogprob)));
  const candidates = [kind === 'mc' ? 0 : -50, ...values];
  let best = { c: candidates[0], acc: -1 };
  for (const c of candidates) {
    const th = { scope, mcConfidence: kind === 'mc' ? c : 0, freeConfidence: kind === 'free' ? c : -50 };
    const r = replay(obs, th, kind);
    if (replay(own, th, kind).serverShare <= MAX_SERVER_SHARE && r.acc > best.acc) best = { c, acc: r.acc };
  }
  return best.c;
}

function sweep(obs: Observation[], scope: number, kind: 'mc' | 'free') {
  const values = uniq(obs.map((o) => (kind === 'mc' ? o.mc.topProb : o.free.meanLogprob)));
  const step = Math.max(1, Math.floor(values.length / 40));
  return [kind === 'mc' ? 0 : -50, ...values.filter((_, i) => i % step === 0), kind === 'mc' ? 1.01 : 0.01].map((c) => ({
    confidence: c,
    ...replay(obs, { scope, mcConfidence: kind === 'mc' ? c : 0, freeConfidence: kind === 'free' ? c : -50 }, kind),
  }));
}

const summary = (obs: Observation[], th: Thresholds, kind: 'mc' | 'free') => ({
  local_only: obs.filter((o) => o[kind].device).length / obs.length,
  server_only: obs.filter((o) => o[kind].server).length / obs.length,
  auto: replay(obs, th, kind),
  scope_only: replay(obs, { ...th, mcConfidence: 0, freeConfidence: -50 }, kind),
});

const val = await observe('validation');
const scopeCal = calibrateScope(val);
const thresholds: Thresholds = { scope: scopeCal.threshold, mcConfidence: calibrateConfidence(val, scopeCal.threshold, 'mc'), freeConfidence: calibrateConfidence(val, scopeCal.threshold, 'free') };
console.log('calibrated thresholds', thresholds);
const test = await observe('test');
const inScope = test.filter((o) => o.inScope);
const scopeTest = { tpr: inScope.filter((o) => o.scope >= thresholds.scope).length / inScope.length, fpr: test.filter((o) => !o.inScope && o.scope >= thresholds.scope).length / (test.length - inScope.length) };
const result = {
  setup: { tasks: customTasks, queriesPerTaskAndSplit: 2 * PER_TASK, examples: K, blend: blendCal, maxServerShare: MAX_SERVER_SHARE, server: 'reference server (llama.cpp via node-llama-cpp) over HTTP on 127.0.0.1, its pool blended by the same weights', device: 'CrayonEngine cpu, Crayon blend merged' },
  thresholds,
  scope: { validationJ: scopeCal.j, test: scopeTest },
  test: { mc: summary(test, thresholds, 'mc'), free: summary(test, thresholds, 'free') },
  curves: { mc: sweep(test, thresholds.scope, 'mc'), free: sweep(test, thresholds.scope, 'free') },
};
writeResult('routing', result);
writeFileSync('bench/results/routing.svg', routingSvg(result.curves.mc, result.test.mc, 'Multiple choice, test split'));
console.log(JSON.stringify({ thresholds, test: result.test }, null, 2));
http.close();
await model.dispose();
await engine.unload();
