// `npx tsx bench/hardening.ts`: the hardening
// checks of issue 20, rerunnable, into bench/results/hardening.json.
//  1. Server memory: the reference server (server/main.ts, default bounds,
//     four API keys) in its own process; its RSS before and after 200 distinct
//     customizations used at once (50 per key), each client retrying a 503
//     after its Retry-After (bounded: 60 s in all).
//  2. 100 clients asking for 64-token answers at once, back to back for
//     CLIENTS100_SECONDS (default 20), each with its own API key, a refused one
//     waiting its Retry-After: statuses and time to first token of the served ones.
//  With BASELINE_COMMIT=<commit>, 1 and 2 also run on that commit's server.
//  3. The structural fuzz of pool and adapter import (2,000 cases from a
//     populated store).
//  4. The privacy checks: e2e/privacy.e2e.ts (the app in Chromium against the
//     reference server) and host.test.ts's "what leaves the device", run by vitest.
// Timings are from a 2-core machine shared with other work: noisy.
import { execFileSync, execSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { structuralFuzz } from '../src/lib/pool/testing/fuzz';
import { worldFuzzInput } from '../src/lib/pool/testing/world-input';
import { worldDir } from '../training/world-dir';
import { median, percentile, writeResult } from './results';

const world = worldDir();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const question = (i: number) => ['What is the capital of Zorvia?', 'What is 3 plus 4?', "Is 'a lovely song' positive or negative?", 'How many m are in 5 km?', 'What color is a glim?'][i % 5];

/** Resident memory of a process, in MB (Linux /proc). */
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** The reference server (server/main.ts of `root`, default bounds) in its own process, with these API keys. */
async function spawnServer(root: string, keys: string[]) {
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const child = spawn(process.execPath, ['--import', 'tsx', `${root}/server/main.ts`, '--world', resolve(world), '--port', String(port), ...keys.flatMap((k) => ['--token', k])], { stdio: ['ignore', 'pipe', 'inherit'], cwd: root });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('Crayon server on') && resolve());
    child.on('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });
  return { base: `http://127.0.0.1:${port}/v1`, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

const busy = (status: number) => status === 503 || status === 429;

async function serverMemory(root: string) {
  const keys = ['bench-a', 'bench-b', 'bench-c', 'bench-d'];
  const { base, pid, stop } = await spawnServer(root, keys);
  try {
    const auth = (i: number) => ({ authorization: `Bearer ${keys[i % keys.length]}`, 'content-type': 'application/json' });
    const pool = (await (await fetch(`${base}/pools`, { headers: auth(0) })).json()).data[0] as { id: string; adapters: string[] };
    await fetch(`${base}/chat/completions`, { method: 'POST', headers: auth(0), body: JSON.stringify({ model: 'crayon-server', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }) });
    const before = rssMb(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
    const deadline = Date.now() + 60_000;
    const statuses: Record<number, number> = {};
    let retries = 0;
    await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      // 200 distinct blends: two adapters, weights that differ per client.
      const weights = { [pool.adapters[i % pool.adapters.length]]: 0.2 + (i % 50) / 50, [pool.adapters[(i + 3) % pool.adapters.length]]: 1 - (i % 7) / 10 };
      const cz = (await (await fetch(`${base}/customizations`, { method: 'POST', headers: auth(i), body: JSON.stringify({ pool: pool.id, weights }) })).json()) as { id: string };
      for (;;) {
        const r = await fetch(`${base}/chat/completions`, { method: 'POST', headers: auth(i), body: JSON.stringify({ model: 'crayon-server', customization: cz.id, messages: [{ role: 'user', content: question(i) }], max_tokens: 16 }) });
        await r.arrayBuffer();
        if (!busy(r.status) || Date.now() > deadline) return void (statuses[r.status] = (statuses[r.status] ?? 0) + 1);
        retries++;
        await sleep(Number(r.headers.get('retry-after') ?? 1) * 1000 * (0.5 + Math.random()));
      }
    }));
    clearInterval(sampler);
    await sleep(500);
    return { before: round(before), after: round(rssMb(pid)), peak: round(peak), customizations: 200, statuses, retries_after_503_or_429: retries };
  } finally {
    stop();
  }
}

async function clients100(root: string, seconds: number) {
  // One API key per client: each has its own rate-limit bucket (the default limit, never reached here).
  const keys = Array.from({ length: 100 }, (_, i) => `client-${i}`);
  const { base, stop } = await spawnServer(root, keys);
  const statuses: Record<number, number> = {};
  const ttft: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  try {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      for (let n = 0; Date.now() < deadline; n++) {
        const start = performance.now();
        const r = await fetch(`${base}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${keys[i]}` }, body: JSON.stringify({ model: 'crayon-server', messages: [{ role: 'user', content: question(i + n) }], max_tokens: 64, stream: true }) });
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status !== 200) {
          await r.arrayBuffer();
          await sleep(Number(r.headers.get('retry-after') ?? 1) * 1000); // a client that honours Retry-After
          continue;
        }
        const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        let first = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          text += value;
          if (!first && /"delta":\{"content":"[^"]/.test(text)) first = performance.now();
        }
        if (first) ttft.push(first - start);
      }
    }));
  } finally {
    stop();
  }
  const count = (f: (s: number) => boolean) => Object.entries(statuses).filter(([s]) => f(Number(s))).reduce((a, [, n]) => a + n, 0);
  return {
    clients: 100,
    seconds,
    requests: count(() => true),
    status_200: count((s) => s === 200),
    status_503: count((s) => s === 503),
    status_5xx: count((s) => s >= 500 && s !== 503),
    statuses,
    ttft_p50_ms: ttft.length ? round(median(ttft)) : null,
    ttft_p95_ms: ttft.length ? round(percentile(ttft, 95)) : null,
  };
}

/** The server of an earlier commit, for a before/after in the same run: its server/ and src/ beside this checkout's node_modules. */
function baselineTree(commit: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'crayon-baseline-'));
  execSync(`git archive ${commit} server src training/world-dir.ts package.json tsconfig.json | tar -x -C ${dir}`);
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
  return dir;
}

function privacy() {
  execFileSync('npx', ['vite', 'build'], { stdio: 'ignore' });
  const out = join(mkdtempSync(join(tmpdir(), 'crayon-privacy-')), 'report.json');
  const run = (args: string[]) => {
    try {
      execFileSync('npx', ['vitest', 'run', ...args, '--reporter=json', `--outputFile=${out}`], { stdio: 'ignore' });
    } catch {
      // failures are read from the report
    }
    const r = JSON.parse(readFileSync(out, 'utf8')) as { numPassedTests: number; numTotalTests: number; success: boolean };
    return { passed: r.numPassedTests, total: r.numTotalTests, success: r.success && r.numTotalTests > 0 };
  };
  const e2e = run(['--config', 'e2e/vitest.config.ts', 'e2e/privacy.e2e.ts']);
  const host = run(['src/lib/router/host.test.ts', '-t', 'what leaves the device']);
  return { passed: e2e.success && host.success, e2e, host };
}

const round = (x: number) => Math.round(x * 10) / 10;

const seconds = Number(process.env.CLIENTS100_SECONDS ?? 20);
const mem = await serverMemory('.');
console.log('server memory', mem);
const c100 = await clients100('.', seconds);
console.log('100 clients', c100);
// BASELINE_COMMIT=<commit>: the same two measurements on that commit's server, in the same run.
const baseCommit = process.env.BASELINE_COMMIT;
let baseline: Record<string, unknown> | undefined;
if (baseCommit) {
  const root = baselineTree(baseCommit);
  baseline = { commit: baseCommit, server_rss_mb: await serverMemory(root), clients100: await clients100(root, seconds) };
  console.log('baseline', JSON.stringify(baseline));
}
const t0 = performance.now();
const fz = await structuralFuzz(worldFuzzInput(), 2000);
const fuzz = { cases: fz.cases, typed: fz.typed, accepted: fz.accepted, untyped: fz.untyped, store_changed: fz.storeChanged, by_code: fz.byCode, failures: fz.failures, seconds: round((performance.now() - t0) / 1000) };
console.log('fuzz', fuzz);
const priv = privacy();
console.log('privacy', priv);

const result = {
  server_rss_mb: mem,
  clients100: c100,
  fuzz,
  privacy: priv,
  ...(baseline ? { baseline } : {}),
  method:
    'server_rss_mb: server/main.ts in its own process with its default bounds (4 contexts x 4 sequences, queue 16) and 4 API keys; RSS (VmRSS) after one warm-up request (before), the peak while 200 distinct customizations (50 per key) were used at once with max_tokens 16, each client retrying a 503 after its Retry-After for up to 60 s, and 0.5 s after the last answer (after). ' +
    'clients100: 100 streaming clients (one API key each), max_tokens 64, back to back on loopback against server/main.ts with its default bounds, a refusal answered by waiting its Retry-After; status_5xx counts 5xx other than 503 (failures), status_503 the refusals; ttft over the served requests, from sending to the first content delta. ' +
    'baseline (when present): the same on BASELINE_COMMIT\'s server. fuzz: src/lib/pool/testing/fuzz.ts over the reference world pool (seed 20261203). privacy: e2e/privacy.e2e.ts and host.test.ts "what leaves the device". 2-core machine shared with other work: timings are noisy.',
};
console.log('wrote', writeResult('hardening', result));
process.exit(0);
