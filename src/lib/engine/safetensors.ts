// The one safetensors reader: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}} (+ optional __metadata__), then
// the raw little-endian tensor bytes. Every way a file can be wrong is a
// typed error naming the file and the tensor.
import { AppError } from '../errors';
import type { TensorEntry } from './engine';
import { f16ToF32 } from './half';

export type DType = 'F32' | 'F16' | 'BF16';
const BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  name: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** The bytes after the header. */
  data: Uint8Array;
}

const MAX_HEADER = 100 * 2 ** 20; // the format's own limit

export function parseSafetensors(bytes: Uint8Array, name = 'model.safetensors'): SafetensorsFile {
  if (bytes.byteLength < 8) throw new AppError('truncated', `${name} is ${bytes.byteLength} bytes long: too short to be a safetensors file.`, { file: name });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen < 2 || headerLen > MAX_HEADER) throw new AppError('bad-format', `${name} is not a safetensors file (header length ${headerLen}).`, { file: name });
  if (8 + headerLen > bytes.byteLength) throw new AppError('truncated', `${name} ends inside its header: the file is incomplete.`, { file: name });
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new AppError('bad-format', `${name} has a header that is not valid JSON: the file is damaged or not safetensors.`, { file: name });
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new AppError('bad-format', `${name}: the header is not a JSON object.`, { file: name });
  const data = bytes.subarray(8 + headerLen);
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      metadata = raw && typeof raw === 'object' ? (raw as Record<string, string>) : {};
      continue;
    }
    tensors.set(key, checkEntry(name, key, raw, data.byteLength));
  }
  checkOverlaps(name, tensors);
  return { name, tensors, metadata, data };
}

function checkEntry(file: string, key: string, raw: unknown, dataLen: number): TensorInfo {
  const bad = (why: string) => new AppError('bad-format', `${file}: tensor "${key}" ${why}.`, { file, tensor: key });
  if (!raw || typeof raw !== 'object') throw bad('has no description');
  const { dtype, shape, data_offsets: off } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string') throw bad('has no dtype');
  if (!(dtype in BYTES)) throw new AppError('unsupported-dtype', `${file}: tensor "${key}" is ${dtype}; supported: F32, F16, BF16.`, { file, tensor: key, dtype });
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad('has an invalid shape');
  if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) throw bad('has invalid data offsets');
  const [begin, end] = off as [number, number];
  const expected = shape.reduce((a: number, d: number) => a * d, 1) * BYTES[dtype as DType];
  if (end - begin !== expected) throw bad(`has ${end - begin} bytes but shape [${shape.join(', ')}] in ${dtype} needs ${expected}`);
  if (end > dataLen) throw new AppError('truncated', `${file}: tensor "${key}" extends past the end of the file: the file is incomplete.`, { file, tensor: key });
  return { dtype: dtype as DType, shape: shape as number[], begin, end };
}

function checkOverlaps(file: string, tensors: Map<string, TensorInfo>): void {
  const ranges = [...tensors.entries()].filter(([, t]) => t.end > t.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][1].begin < ranges[i - 1][1].end) {
      throw new AppError('bad-format', `${file}: tensors "${ranges[i - 1][0]}" and "${ranges[i][0]}" overlap.`, { file });
    }
  }
}

/** A tensor's values as f32 (a copy for F16/BF16 and for unaligned F32). */
export function readTensor(file: SafetensorsFile, key: string): Float32Array {
  const t = file.tensors.get(key);
  if (!t) throw new AppError('missing-file', `${file.name} has no tensor "${key}".`, { file: file.name, tensor: key });
  const bytes = file.data.subarray(t.begin, t.end);
  const n = (t.end - t.begin) / BYTES[t.dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (t.dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
    else for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (t.dtype === 'F16') {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
  } else {
    const u32 = new Uint32Array(n);
    for (let i = 0; i < n; i++) u32[i] = view.getUint16(i * 2, true) << 16;
    out.set(new Float32Array(u32.buffer));
  }
  return out;
}

/** Every tensor of the files (a checkpoint's shards) by name, read on demand. */
export function safetensorsTensors(files: SafetensorsFile[]): Map<string, TensorEntry> {
  const out = new Map<string, TensorEntry>();
  for (const f of files) {
    for (const [key, t] of f.tensors) out.set(key, { shape: t.shape, dtype: t.dtype, bytes: t.end - t.begin, read: () => readTensor(f, key) });
  }
  return out;
}

/** Writes a safetensors file (F32 only): for exports and tests. */
export function writeSafetensors(tensors: Record<string, { shape: number[]; data: Float32Array }>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [k, t] of Object.entries(tensors)) {
    header[k] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  if (metadata) header.__metadata__ = metadata;
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(raw.byteLength + ((8 - (raw.byteLength % 8)) % 8)).fill(0x20); // pad with spaces: data 8-aligned
  head.set(raw);
  const out = new Uint8Array(8 + head.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let p = 8 + head.byteLength;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}
