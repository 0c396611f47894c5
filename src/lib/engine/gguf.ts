// The GGUF reader (llama.cpp's file format, versions 2 and 3): a header
// (magic "GGUF", version, tensor and metadata counts), typed metadata
// key/values, tensor descriptions (name, dims innermost first, ggml type,
// offset), then the tensor data at the file's alignment. Every way a file can
// be wrong is a typed error naming the file and, where there is one, the key
// or the tensor. Dequantizing lives in quants.ts.
import { AppError } from '../errors';
import { blockLayout, GGML_TYPE_NAMES, type GgmlType } from './quants';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  name: string;
  type: GgmlType;
  /** Row-major shape (outermost first), as PyTorch and safetensors write it: GGUF's dims reversed. */
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

export interface GgufFile {
  name: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensor>;
  /** The bytes from the data section's start (aligned) to the end of the file. */
  data: Uint8Array;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
// GGUF metadata value types.
const V = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

/** True when the bytes start with GGUF's magic. */
export function isGguf(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === MAGIC;
}

/** A cursor over the header that turns reading past the end into a 'truncated' error. */
class Reader {
  pos = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly bytes: Uint8Array, private readonly file: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): number {
    if (this.pos + n > this.bytes.byteLength) throw new AppError('truncated', `${this.file} ends inside its header: the file is incomplete.`, { file: this.file });
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u32 = () => this.view.getUint32(this.need(4), true);
  /** A u64 that must fit in a JavaScript number (counts, lengths, dims, offsets). */
  size(what: string): number {
    const v = this.view.getBigUint64(this.need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new AppError('bad-format', `${this.file}: ${what} is ${v}, too large to be real: the file is damaged.`, { file: this.file });
    return Number(v);
  }

  string(what: string): string {
    const n = this.size(`the length of ${what}`);
    const at = this.need(n);
    try {
      return this.utf8.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw new AppError('bad-format', `${this.file}: ${what} is not valid UTF-8: the file is damaged.`, { file: this.file });
    }
  }

  value(type: number, key: string): GgufValue {
    const v = this.view;
    switch (type) {
      case V.U8: return v.getUint8(this.need(1));
      case V.I8: return v.getInt8(this.need(1));
      case V.U16: return v.getUint16(this.need(2), true);
      case V.I16: return v.getInt16(this.need(2), true);
      case V.U32: return v.getUint32(this.need(4), true);
      case V.I32: return v.getInt32(this.need(4), true);
      case V.F32: return v.getFloat32(this.need(4), true);
      case V.BOOL: return v.getUint8(this.need(1)) !== 0;
      case V.STRING: return this.string(`the value of "${key}"`);
      case V.U64: return v.getBigUint64(this.need(8), true);
      case V.I64: return v.getBigInt64(this.need(8), true);
      case V.F64: return v.getFloat64(this.need(8), true);
      case V.ARRAY: {
        const inner = this.u32();
        if (inner === V.ARRAY) throw new AppError('bad-format', `${this.file}: "${key}" is an array of arrays, which the engine does not read.`, { file: this.file, key });
        const n = this.size(`the length of "${key}"`);
        const out: GgufValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(inner, key);
        return out;
      }
      default:
        throw new AppError('bad-format', `${this.file}: metadata "${key}" has unknown value type ${type}: the file is damaged or from a newer GGUF version.`, { file: this.file, key });
    }
  }
}

export function parseGguf(bytes: Uint8Array, name = 'model.gguf'): GgufFile {
  if (!isGguf(bytes)) throw new AppError('bad-format', `${name} is not a GGUF file (it does not start with "GGUF").`, { file: name });
  const r = new Reader(bytes, name);
  r.pos = 4;
  const version = r.u32();
  if (version !== 2 && version !== 3) throw new AppError('bad-format', `${name} is GGUF version ${version}; the engine reads versions 2 and 3.`, { file: name, version });
  const nTensors = r.size('the tensor count');
  const nKv = r.size('the metadata count');
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = r.string('a metadata key');
    metadata.set(key, r.value(r.u32(), key));
  }
  const infos: { name: string; dims: number[]; type: number; offset: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const tname = r.string('a tensor name');
    const nDims = r.u32();
    if (nDims < 1 || nDims > 4) throw new AppError('bad-format', `${name}: tensor "${tname}" has ${nDims} dimensions (GGUF allows 1 to 4).`, { file: name, tensor: tname });
    const dims = Array.from({ length: nDims }, () => r.size(`a dimension of "${tname}"`));
    infos.push({ name: tname, dims, type: r.u32(), offset: r.size(`the offset of "${tname}"`) });
  }
  const alignment = Number(metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT);
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new AppError('bad-format', `${name}: general.alignment is ${alignment}; it must be a positive multiple of 8.`, { file: name });
  const start = Math.ceil(r.pos / alignment) * alignment;
  const data = bytes.subarray(Math.min(start, bytes.byteLength));
  const tensors = new Map<string, GgufTensor>();
  for (const t of infos) tensors.set(t.name, checkTensor(name, t, alignment, data.byteLength));
  return { name, version, metadata, tensors, data };
}

function checkTensor(file: string, t: { name: string; dims: number[]; type: number; offset: number }, alignment: number, dataLen: number): GgufTensor {
  const layout = blockLayout(t.type);
  if (!layout) {
    const known = GGML_TYPE_NAMES[t.type];
    throw new AppError('unsupported-dtype', `${file}: tensor "${t.name}" is ${known ?? `ggml type ${t.type}`}; the engine reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K.`, { file, tensor: t.name, dtype: known ?? t.type });
  }
  const count = t.dims.reduce((a, d) => a * d, 1);
  if (t.dims[0] % layout.values !== 0) {
    throw new AppError('bad-format', `${file}: tensor "${t.name}" has rows of ${t.dims[0]} values, not a whole number of ${layout.name} blocks of ${layout.values}.`, { file, tensor: t.name });
  }
  if (t.offset % alignment !== 0) throw new AppError('bad-format', `${file}: tensor "${t.name}" starts at ${t.offset}, off the file's ${alignment}-byte alignment.`, { file, tensor: t.name });
  const end = t.offset + (count / layout.values) * layout.bytes;
  if (end > dataLen) throw new AppError('truncated', `${file}: tensor "${t.name}" extends past the end of the file: the file is incomplete.`, { file, tensor: t.name });
  return { name: t.name, type: t.type as GgmlType, shape: [...t.dims].reverse(), begin: t.offset, end };
}

/** A metadata value, checked to be of the kind the caller needs; absent gives `fallback` or a typed error. */
export function meta<T extends 'number' | 'string' | 'boolean' | 'array'>(f: GgufFile, key: string, kind: T, fallback?: GgufValue): T extends 'number' ? number : T extends 'string' ? string : T extends 'boolean' ? boolean : GgufValue[] {
  let v = f.metadata.get(key) ?? fallback;
  if (v === undefined) throw new AppError('bad-format', `${f.name} has no "${key}" in its metadata.`, { file: f.name, key });
  if (kind === 'number' && typeof v === 'bigint') v = Number(v);
  const ok = kind === 'array' ? Array.isArray(v) : typeof v === kind;
  if (!ok) throw new AppError('bad-format', `${f.name}: "${key}" should be a ${kind}.`, { file: f.name, key });
  return v as never;
}
