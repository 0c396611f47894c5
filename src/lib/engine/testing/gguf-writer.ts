// Writes small GGUF files (version 3) for tests: string, number and array
// metadata, and tensors given as raw block bytes of any ggml type. Real files
// come from llama.cpp's converter or the gguf package; this only makes the
// malformed and unusual ones the reader must turn into typed errors.
export interface TensorSpec {
  name: string;
  /** GGUF order: innermost dimension first. */
  dims: number[];
  type: number;
  data: Uint8Array;
}

type Meta = string | number | boolean | string[] | number[];

export function writeGguf(metadata: Record<string, Meta>, tensors: TensorSpec[], alignment = 32): Uint8Array {
  const parts: number[] = [];
  const enc = new TextEncoder();
  const u32 = (v: number) => parts.push(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255);
  const u64 = (v: number) => (u32(v % 2 ** 32), u32(Math.floor(v / 2 ** 32)));
  const str = (s: string) => {
    const b = enc.encode(s);
    u64(b.length);
    parts.push(...b);
  };
  const f32 = (v: number) => parts.push(...new Uint8Array(new Float32Array([v]).buffer));
  const value = (v: Meta) => {
    if (typeof v === 'string') return u32(8), str(v);
    if (typeof v === 'boolean') return u32(7), parts.push(v ? 1 : 0);
    if (typeof v === 'number') return Number.isInteger(v) ? (u32(4), u32(v)) : (u32(6), f32(v));
    const strings = typeof v[0] === 'string';
    u32(9);
    u32(strings ? 8 : 5);
    u64(v.length);
    for (const x of v) (strings ? str(x as string) : u32(x as number));
  };
  u32(0x46554747);
  u32(3);
  u64(tensors.length);
  u64(Object.keys(metadata).length);
  for (const [k, v] of Object.entries(metadata)) (str(k), value(v));
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(t.type);
    offsets.push(offset);
    u64(offset);
    offset += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  const start = Math.ceil(parts.length / alignment) * alignment;
  const out = new Uint8Array(start + offset);
  out.set(parts);
  tensors.forEach((t, i) => out.set(t.data, start + offsets[i]));
  return out;
}
