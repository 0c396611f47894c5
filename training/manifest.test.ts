// The committed reference world is exactly what its manifest lists: every
// file with its size and sha256, nothing missing and nothing unlisted.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { worldDir } from './world-dir';

const world = worldDir();

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('world manifest', () => {
  const manifest = JSON.parse(readFileSync(`${world}/manifest.json`, 'utf8')) as {
    files: { path: string; bytes: number; sha256: string }[];
    totalBytes: number;
    measured: Record<string, unknown>;
  };

  it('lists every file of the world, and only those', () => {
    const onDisk = listFiles(world).map((p) => relative(world, p)).filter((p) => p !== 'manifest.json').sort();
    expect(manifest.files.map((f) => f.path).sort()).toEqual(onDisk);
  });

  it('matches each file by size and sha256', () => {
    for (const f of manifest.files) {
      const bytes = readFileSync(join(world, f.path));
      expect(bytes.length, f.path).toBe(f.bytes);
      expect(createHash('sha256').update(bytes).digest('hex'), f.path).toBe(f.sha256);
    }
  });

  it('stays under the 30 MB the repository allows for it', () => {
    const total = manifest.files.reduce((s, f) => s + f.bytes, 0);
    expect(total).toBe(manifest.totalBytes);
    expect(statSync(world).isDirectory()).toBe(true);
    expect(total).toBeLessThan(30 * 2 ** 20);
  });

  it('records the measured accuracies and parameter counts', () => {
    expect(manifest.measured).toMatchObject({
      device: { params: expect.any(Number), base_custom_acc: expect.any(Number) },
      server: { params: expect.any(Number), base_custom_acc: expect.any(Number) },
      pool: { n: expect.any(Number), min_own_cluster_lift: expect.any(Number) },
      oracle: { min_lift: expect.any(Number) },
      best_single_custom_acc: expect.any(Number),
    });
  });
});
