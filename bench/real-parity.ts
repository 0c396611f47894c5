// The real model's PyTorch references, as `npm run real-model` writes them into
// <cache>/reference/: parity.json (5 chat prompts as token ids) and the
// next-token logits after each prompt, raw little-endian f32 [5, vocab]. Pure,
// so the Node benchmark and the browser page read them the same way.
import { maxAbsDiff } from '../src/lib/engine/testing/compare';

export interface ParityReference {
  vocab: number;
  prompts: { messages: { role: string; content: string }[]; ids: number[] }[];
  /** File names beside parity.json: PyTorch on the weights exactly dequantized from the GGUF, and on their f16 rounding. */
  logits: { exact: string; f16: string };
}

/** The reference logits, one row per prompt: [vocab] f32 each. */
export function referenceRows(bytes: Uint8Array, ref: ParityReference, file: string): Float32Array[] {
  const n = ref.prompts.length;
  if (bytes.byteLength !== n * ref.vocab * 4) {
    throw new Error(`${file} has ${bytes.byteLength} bytes, not ${n} prompts × ${ref.vocab} logits × 4: rerun \`npm run real-model\`.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: n }, (_, p) => {
    const row = new Float32Array(ref.vocab); // [vocab] f32
    for (let j = 0; j < ref.vocab; j++) row[j] = view.getFloat32((p * ref.vocab + j) * 4, true);
    return row;
  });
}

/** The largest |ours - PyTorch's| over one prompt's logits; a length mismatch is an error, not a small number. */
export function logitsMaxAbs(ours: Float32Array, reference: Float32Array): number {
  if (ours.length !== reference.length) throw new Error(`The engine gave ${ours.length} logits; PyTorch's reference has ${reference.length}.`);
  return maxAbsDiff(ours, reference);
}

/**
 * The URL path under which a Vite dev server rooted at `root` serves the folder `dir` (both absolute):
 * a path under the root as it is, anything else through Vite's /@fs/ (allowed within the workspace).
 */
export function servedPath(dir: string, root: string): string {
  const under = dir.startsWith(`${root}/`) ? dir.slice(root.length) : `/@fs${dir}`;
  return under.endsWith('/') ? under : `${under}/`;
}
