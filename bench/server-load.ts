// `npm run bench:server`: a bounded load test of the reference server on
// 127.0.0.1 — N concurrent clients (default 50) each streaming chat
// completions back to back for D seconds (default 60) — recording errors,
// time to first token and generated tokens per second.
import type { AddressInfo } from 'node:net';
import { worldDir } from '../training/world-dir';
import { createCrayonServer, DEFAULT_CONFIG } from '../server/app';
import { loadPool, ServerModel } from '../server/llama';
import { OpenAiClient } from '../src/lib/remote/openai-client';
import { median, percentile, writeResult } from './results';

const CLIENTS = Number(process.env.CLIENTS ?? 50);
const SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
const world = worldDir();
const model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 4, sequences: 8, contextSize: 256 });
const server = createCrayonServer(model, { ...DEFAULT_CONFIG, rateLimit: { capacity: 1e9, refillPerSec: 1e9 }, requestTimeoutMs: 120_000 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
const questions = ['What is the capital of Zorvia?', 'What is 3 plus 4?', "Is 'a lovely song' positive or negative?", 'How many m are in 5 km?', 'What color is a glim?'];

const ttft: number[] = [];
let tokens = 0;
let requests = 0;
const errors: string[] = [];
const deadline = Date.now() + SECONDS * 1000;
const t0 = Date.now();

async function client(i: number): Promise<void> {
  // timeout 0-retry: a failure is counted, not hidden by a retry
  const c = new OpenAiClient({ baseUrl: base, fetch, timeoutMs: 120_000, retries: 0 });
  for (let n = 0; Date.now() < deadline; n++) {
    const start = performance.now();
    let first = 0;
    try {
      await c.chat({ model: 'crayon-server', messages: [{ role: 'user', content: questions[(i + n) % questions.length] }], maxTokens: 24 }, {
        onToken: () => {
          if (!first) first = performance.now();
          tokens++;
        },
      });
      requests++;
      if (first) ttft.push(first - start);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
}

await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
const elapsed = (Date.now() - t0) / 1000;
server.close();
await model.dispose();
const result = {
  clients: CLIENTS,
  duration_s: elapsed,
  requests,
  errors: errors.length,
  error_samples: [...new Set(errors)].slice(0, 5),
  ttft_p50_ms: ttft.length ? median(ttft) : null,
  ttft_p95_ms: ttft.length ? percentile(ttft, 95) : null,
  tokens_per_s: tokens / elapsed,
  method: `${CLIENTS} streaming clients back to back for ${SECONDS} s on loopback; max_tokens 24; llama.cpp CPU, ${8} sequences per context`,
};
console.log(JSON.stringify(result, null, 2));
console.log('wrote', writeResult('server', result));
process.exit(0);
