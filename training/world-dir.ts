// Which reference world tests read: the committed world/ by default;
// CRAYON_WORLD=world-smoke points them at a freshly built miniature one.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export function worldDir(): string {
  const dir = resolve(process.env.CRAYON_WORLD ?? 'world');
  if (!existsSync(`${dir}/manifest.json`)) {
    throw new Error(`No reference world at ${dir}: run \`npm run world\` (or set CRAYON_WORLD).`);
  }
  return dir;
}
