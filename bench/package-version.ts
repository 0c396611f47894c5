// The installed version of a package, found as Node finds the package: in
// node_modules of the current folder or the nearest folder above it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function packageVersion(name: string, from = process.cwd()): string {
  for (let d = from; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name, 'package.json');
    if (existsSync(p)) return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    if (dirname(d) === d) throw new Error(`${name} is not installed: run npm install.`);
  }
}
