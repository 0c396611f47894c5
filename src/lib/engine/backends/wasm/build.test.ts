// The committed kernels.wasm.ts is what kernels.wat compiles to (npm run build:wasm): a .wat edited
// without rebuilding fails here, in CI too.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileKernels, kernelsModuleText, OUT_PATH } from '../../../../../scripts/build-wasm';

describe('the wasm kernels build', () => {
  it('has the committed module equal to kernels.wat compiled afresh', async () => {
    const bytes = await compileKernels();
    expect(WebAssembly.validate(bytes)).toBe(true);
    expect(readFileSync(OUT_PATH, 'utf8')).toBe(kernelsModuleText(bytes));
  });
});
