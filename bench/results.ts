// Where benchmark results go: bench/results/<name>.json, each stamped with
// when, on what machine and at which commit it was measured, so BENCHMARKS.md
// can say exactly what a number means.
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';

export interface Provenance {
  date: string;
  commit: string;
  dirty: boolean;
  machine: { cpus: number; cpuModel: string; memGiB: number; platform: string; node: string };
}

export function provenance(): Provenance {
  const git = (cmd: string) => {
    try {
      return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  return {
    date: new Date().toISOString(),
    commit: git('git rev-parse --short HEAD') || 'unknown',
    // Uncommitted changes to code; the benchmarks' own outputs don't count.
    dirty: git("git status --porcelain --untracked-files=no -- . ':!bench/results' ':!BENCHMARKS.md' ':!src/lib/calibration.json'") !== '',
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()}-${os.arch()}`,
      node: process.version,
    },
  };
}

/** Writes bench/results/<name>.json with provenance first; returns the path. */
export function writeResult(name: string, data: Record<string, unknown>, dir = 'bench/results'): string {
  mkdirSync(dir, { recursive: true });
  const path = `${dir}/${name}.json`;
  writeFileSync(path, JSON.stringify({ ...data, provenance: provenance() }, null, 2) + '\n');
  return path;
}

export { median, percentile } from './stats';
