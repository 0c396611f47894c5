// Crayon's device–server routing decision, as a pure function of the signals
// the device computed for one query. Scope: how close the query's embedding is
// to the centroid of the customization's examples (far = a task the device
// wasn't customized for). Confidence: how sure the device's own answer is
// (top option probability for multiple choice, mean token log-probability of
// its draft for free-form). Low scope or low confidence goes to the server:
// a low-confidence query to the server customized by the same blend weights,
// an out-of-scope one to the server's general model.

export type RoutingPolicy = 'local-only' | 'server-only' | 'auto';
export type Route = 'device' | 'server';
export type RouteReason =
  | 'policy-local-only'
  | 'policy-server-only'
  | 'in-scope-confident'
  | 'out-of-scope'
  | 'low-confidence'
  | 'no-customization' // auto without a customization: scope can't be judged, confidence decides
  | 'server-unavailable'; // auto wanted the server but none is configured or it failed

export interface Thresholds {
  /** Cosine similarity to the examples' centroid below which a query is out of scope. */
  scope: number;
  /** Multiple choice: top option probability below which the device is not confident. */
  mcConfidence: number;
  /** Free-form: mean token log-probability of the draft below which the device is not confident. */
  freeConfidence: number;
}

export interface Signals {
  /** Cosine similarity of the query to the customization's centroid; undefined without a customization. */
  scope?: number;
  /** The device's confidence, in the units of its kind. */
  confidence?: { kind: 'mc'; topProb: number } | { kind: 'free'; meanLogprob: number };
}

export interface Decision {
  route: Route;
  reason: RouteReason;
  /**
   * When the route is the server: whether it answers with the customization's blend. An
   * out-of-scope query is not of the customized task, so the server's general model answers it
   * (and the customization is not even registered for it).
   */
  customizedServer: boolean;
  scores: { scope?: number; confidence?: number };
  thresholds: Thresholds;
}

/** Needs the device's draft to decide? (Avoids computing it when scope already decides.) */
export function needsConfidence(policy: RoutingPolicy, th: Thresholds, scope: number | undefined): boolean {
  return policy === 'auto' && !(scope !== undefined && scope < th.scope);
}

export function decide(policy: RoutingPolicy, th: Thresholds, signals: Signals, serverAvailable = true): Decision {
  const confidence = signals.confidence?.kind === 'mc' ? signals.confidence.topProb : signals.confidence?.meanLogprob;
  const scores = { scope: signals.scope, confidence };
  const at = (route: Route, reason: RouteReason): Decision => ({ route, reason, customizedServer: route === 'server' && reason !== 'out-of-scope', scores, thresholds: th });

  if (policy === 'local-only') return at('device', 'policy-local-only');
  if (policy === 'server-only') return serverAvailable ? at('server', 'policy-server-only') : at('device', 'server-unavailable');

  let wantServer: RouteReason | null = null;
  if (signals.scope !== undefined && signals.scope < th.scope) wantServer = 'out-of-scope';
  else if (signals.confidence) {
    const low = signals.confidence.kind === 'mc' ? signals.confidence.topProb < th.mcConfidence : signals.confidence.meanLogprob < th.freeConfidence;
    if (low) wantServer = 'low-confidence';
  }
  if (wantServer === null) return at('device', signals.scope === undefined ? 'no-customization' : 'in-scope-confident');
  return serverAvailable ? at('server', wantServer) : at('device', 'server-unavailable');
}

/** Cosine similarity of two equal-length vectors; 0 when either is all zeros. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`cosine: lengths differ (${a.length} vs ${b.length})`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Element-wise mean of equal-length vectors (the examples' centroid). */
export function centroid(vectors: ArrayLike<number>[]): Float32Array {
  if (vectors.length === 0) throw new RangeError('centroid of no vectors');
  const out = new Float32Array(vectors[0].length);
  for (const v of vectors) {
    if (v.length !== out.length) throw new RangeError('centroid: vectors differ in length');
    for (let i = 0; i < out.length; i++) out[i] += v[i] / vectors.length;
  }
  return out;
}
