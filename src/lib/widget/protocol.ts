// The widget's postMessage protocol, version 1: what a host page and the
// widget's iframe say to each other. Every message is a discriminated union
// member with the protocol's name and version; anything else (another
// protocol, another version, an unknown type) is ignored. The widget accepts a
// message only from its parent window at an allowed origin, compared exactly
// (WidgetGate), answers only there (an explicit targetOrigin, never '*'), and
// turns an oversized or malformed message from that host into an error reply.
import { AppError, type ErrorCode } from '../errors';

export const PROTOCOL = 'crayon-widget';
export const PROTOCOL_VERSION = 1;

export const MESSAGE_LIMITS = {
  /** A host message as JSON, in UTF-8 bytes. */
  bytes: 16 * 1024,
  /** A question, in characters. */
  question: 2000,
  /** An ask's id, in characters. */
  id: 64,
};

interface Envelope {
  protocol: typeof PROTOCOL;
  version: typeof PROTOCOL_VERSION;
}

export type Theme = 'light' | 'dark';

/** Host → widget. */
export type HostMessage = Envelope &
  (
    | { type: 'ask'; id: string; question: string }
    | { type: 'open' }
    | { type: 'close' }
    | { type: 'setTheme'; theme: Theme }
  );

/** Where an answer ran and why, in words (e.g. "in scope and confident"). */
export interface RouteTaken {
  where: 'device' | 'server';
  reason: string;
}

/** Widget → host. */
export type WidgetMessage = Envelope &
  (
    | { type: 'ready'; assistant: string }
    /** A streamed piece of the answer to ask `id`, and where it is being produced (a device draft can give way to the server). */
    | { type: 'answer'; id: string; done: false; chunk: string; route: 'device' | 'server' }
    /** The whole answer to ask `id`, with the route it took. */
    | { type: 'answer'; id: string; done: true; text: string; route: RouteTaken }
    /** The size the widget wants; `open: false` when it closed itself (Esc, its close button). */
    | { type: 'resize'; open: boolean; width: number; height: number }
    /** `id`: the ask that failed; null: the widget itself (e.g. its bundle). */
    | { type: 'error'; id: string | null; code: ErrorCode; message: string }
  );

type Body<M> = M extends Envelope ? Omit<M, keyof Envelope> : never;
export type HostBody = Body<HostMessage>;
export type WidgetBody = Body<WidgetMessage>;

/** A message of this protocol and version from its body. */
export function envelope<M extends HostMessage | WidgetMessage>(body: Body<M>): M {
  return { protocol: PROTOCOL, version: PROTOCOL_VERSION, ...body } as M;
}

type Json = Record<string, unknown>;
const ours = (d: unknown): d is Json => !!d && typeof d === 'object' && (d as Json).protocol === PROTOCOL && (d as Json).version === PROTOCOL_VERSION;

/** UTF-8 bytes of a message as JSON; Infinity for what JSON can't hold (a cycle, a BigInt). */
export function messageBytes(data: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(data) ?? '').byteLength;
  } catch {
    return Infinity;
  }
}

function askId(d: Json): string | null {
  return typeof d.id === 'string' && d.id.length > 0 && d.id.length <= MESSAGE_LIMITS.id ? d.id : null;
}

/**
 * A host message, or null when it is not one this widget knows (ignored). Throws a typed error for one it
 * knows but can't take: 'too-large' over the size limits, 'invalid-argument' with a missing or wrong field
 * (the error's details carry the ask's id when it had a usable one).
 */
export function readHostMessage(data: unknown): HostMessage | null {
  if (!ours(data)) return null;
  const id = askId(data);
  // The question's length first: a huge string is refused before it is serialized.
  const q = data.question;
  if (data.type === 'ask' && typeof q === 'string' && q.length > MESSAGE_LIMITS.question) {
    throw new AppError('too-large', `The question is ${q.length} characters long; the widget takes at most ${MESSAGE_LIMITS.question}.`, { id, limit: MESSAGE_LIMITS.question });
  }
  const bytes = messageBytes(data);
  if (bytes > MESSAGE_LIMITS.bytes) throw new AppError('too-large', `The message is ${bytes} bytes; the widget takes at most ${MESSAGE_LIMITS.bytes}.`, { id, limit: MESSAGE_LIMITS.bytes });
  const invalid = (why: string) => new AppError('invalid-argument', `The widget's ${String(data.type)} message ${why}.`, { id });
  switch (data.type) {
    case 'ask':
      if (!id) throw invalid(`needs an id: a string of 1 to ${MESSAGE_LIMITS.id} characters`);
      if (typeof q !== 'string' || q.trim() === '') throw invalid('needs a non-empty question');
      return envelope<HostMessage>({ type: 'ask', id, question: q });
    case 'open':
    case 'close':
      return envelope<HostMessage>({ type: data.type });
    case 'setTheme':
      if (data.theme !== 'light' && data.theme !== 'dark') throw invalid('needs a theme, "light" or "dark"');
      return envelope<HostMessage>({ type: 'setTheme', theme: data.theme });
    default:
      return null;
  }
}

const WIDGET_TYPES = new Set(['ready', 'answer', 'resize', 'error']);

/** A widget message as the host reads it (the loader), or null when it is not one (ignored). */
export function readWidgetMessage(data: unknown): WidgetMessage | null {
  return ours(data) && WIDGET_TYPES.has(data.type as string) ? (data as unknown as WidgetMessage) : null;
}

/** What a message event carries that the checks need. */
export interface Received {
  origin: string;
  source: unknown;
  data: unknown;
}

export type Verdict =
  /** From the parent at an allowed origin, and one this widget knows. */
  | { kind: 'message'; message: HostMessage; origin: string }
  /** From the parent at an allowed origin, but not this protocol, version or type. */
  | { kind: 'ignored' }
  /** From elsewhere: never answered, counted. */
  | { kind: 'rejected' }
  /** From the parent at an allowed origin, but too large or malformed: answered with this error. */
  | { kind: 'invalid'; error: AppError; origin: string; id: string | null };

/** The widget's door: which messages it takes, and how many it turned away. */
export class WidgetGate {
  rejected = 0;
  private readonly allowed: ReadonlySet<string>;

  /** `parent`: the window the host page runs in (window.parent); messages from any other window are rejected. */
  constructor(
    allowed: readonly string[],
    private readonly parent: unknown,
  ) {
    this.allowed = new Set(allowed);
  }

  check(e: Received): Verdict {
    // Exact comparisons only: no prefix, suffix or case folding of origins.
    if (e.source !== this.parent || !this.allowed.has(e.origin)) {
      this.rejected++;
      return { kind: 'rejected' };
    }
    try {
      const message = readHostMessage(e.data);
      return message ? { kind: 'message', message, origin: e.origin } : { kind: 'ignored' };
    } catch (err) {
      const error = err instanceof AppError ? err : new AppError('invalid-argument', String(err));
      return { kind: 'invalid', error, origin: e.origin, id: (error.details?.id as string | null | undefined) ?? null };
    }
  }
}
