// Typed errors for the whole library: every failure a user can meet carries a
// stable `code` (what callers branch on) and a message a person can act on.
// Errors cross worker boundaries as plain {name, code, message, details}
// objects and are rebuilt here with `fromSerialized`.

export type ErrorCode =
  // input files and formats
  | 'bad-format' // a file is not what it claims (malformed JSON, safetensors header, GGUF)
  | 'truncated' // a file ends before its header says it should
  | 'missing-file' // a required file of a checkpoint or adapter is absent
  | 'checksum-mismatch' // a downloaded file's sha256 differs from the one pinned for it
  | 'unsupported-architecture'
  | 'unsupported-dtype'
  | 'shape-mismatch' // a tensor's shape disagrees with the config or the base model
  | 'incompatible-adapter' // an adapter does not fit the base model (modules, rank, dims)
  | 'unknown-model' // a model id that this app does not know (e.g. in an assistant bundle)
  | 'too-large' // an input over its size limit (an assistant bundle, a widget message)
  // runtime
  | 'context-overflow' // prompt + generation would exceed the model's context
  | 'aborted' // the caller cancelled
  | 'not-loaded' // an operation needs a model or adapter that is not loaded
  | 'invalid-argument'
  | 'backend-unavailable' // e.g. WebGPU requested but no adapter
  | 'gpu-error' // the GPU device was lost or a GPU call failed
  // storage
  | 'quota-exceeded'
  | 'storage-error'
  | 'not-found'
  // network and server
  | 'network' // unreachable, DNS, connection reset
  | 'timeout'
  | 'http' // a non-2xx answer (status in details)
  | 'unauthorized'
  | 'rate-limited'
  | 'internal';

export interface SerializedError {
  name: string;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }

  toJSON(): SerializedError {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

/** The caller cancelled (AbortSignal); callers usually want to ignore these quietly. */
export class AbortError extends AppError {
  constructor(message = 'The operation was cancelled.') {
    super('aborted', message);
    this.name = 'AbortError';
  }
}

export function isAppError(e: unknown, code?: ErrorCode): e is AppError {
  return e instanceof AppError && (code === undefined || e.code === code);
}

/** Throws an AbortError if the signal has fired. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError();
}

/** Turns anything thrown into a plain object that survives postMessage / JSON. */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof AppError) return e.toJSON();
  if (e instanceof DOMException && e.name === 'AbortError') return new AbortError().toJSON();
  if (e instanceof DOMException && e.name === 'QuotaExceededError') {
    return { name: 'AppError', code: 'quota-exceeded', message: 'Storage is full: free some space or delete models you no longer use.' };
  }
  return { name: 'AppError', code: 'internal', message: messageOf(e) };
}

/** The message of anything thrown: an Error's message, else the value as text. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Rebuilds a typed error from its serialized form (the inverse of serializeError). */
export function fromSerialized(s: SerializedError): AppError {
  if (s.code === 'aborted') return new AbortError(s.message);
  return new AppError(s.code, s.message, s.details);
}
