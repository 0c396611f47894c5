// How far two greedy decodes of the same prompt agree, and what our engine's
// logits looked like where they first parted. Agreement is first_divergence / n:
// after one side picks a different token the two continue from different
// contexts, so positions after the first divergence are not compared at all.
import { argmax } from '../src/lib/engine/sampler';

export interface Divergence {
  /** How many tokens both sides chose alike before the first difference; null when all n agree. */
  first_divergence: number | null;
  agreement: number;
  /** At the first divergence (absent when none): each side's token, and our logits there. */
  at?: {
    ours: { token: number; text: string };
    llamacpp: { token: number; text: string };
    /** Our top-1 logit minus our top-2 logit: how close our own choice was. */
    our_top2_gap: number;
    /** Our top-1 logit minus our logit for llama.cpp's token (equals the top-2 gap when that token is our second choice). */
    our_gap_to_llamacpp_token: number;
    /** llama.cpp's token's rank in our logits (1 = our top choice). */
    llamacpp_token_rank_in_ours: number;
    /**
     * llama.cpp's log-probability of its own token minus that of ours, from its probabilities at that
     * position (its own logit gap between the two); null when our token is not among the peer's top few.
     */
    llamacpp_gap_to_our_token: number | null;
    /** Whether a fresh prefill of the shared context picks our decoded token again (it should: same forward pass). */
    prefill_argmax_is_ours: boolean;
  };
}

/** The index of the first position where a and b differ, or null. */
export function firstDivergence(a: number[], b: number[]): number | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}

/**
 * Compares our greedy tokens with the peer's; `logitsAt(k)` gives our next-token logits after
 * the prompt and our first k tokens (the context both sides share at a divergence at k).
 */
export async function divergence(
  ours: number[],
  peer: { tokens: number[]; top: [number, number][][]; decode: (ids: number[]) => string },
  logitsAt: (k: number) => Promise<Float32Array>,
  decode: (ids: number[]) => string,
): Promise<Divergence> {
  const k = firstDivergence(ours, peer.tokens);
  if (k === null) return { first_divergence: null, agreement: 1 };
  const logits = await logitsAt(k);
  const top = argmax(logits);
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) if (i !== top && logits[i] > second) second = logits[i];
  const theirs = peer.tokens[k];
  const peerLp = new Map(peer.top[k]);
  let rank = 1;
  for (let i = 0; i < logits.length; i++) if (logits[i] > logits[theirs]) rank++;
  return {
    first_divergence: k,
    agreement: k / ours.length,
    at: {
      ours: { token: ours[k], text: decode([ours[k]]) },
      llamacpp: { token: theirs, text: peer.decode([theirs]) },
      our_top2_gap: logits[top] - second,
      our_gap_to_llamacpp_token: logits[top] - logits[theirs],
      llamacpp_token_rank_in_ours: rank,
      llamacpp_gap_to_our_token: peerLp.has(ours[k]) ? peerLp.get(theirs)! - peerLp.get(ours[k])! : null,
      prefill_argmax_is_ours: top === ours[k],
    },
  };
}
