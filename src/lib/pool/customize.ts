// The runtime-facing steps of customization, shared by the app and the
// benchmark: embed the user's examples the way the world builder embeds pool
// data (the chat-rendered [user: input, assistant: output] pair), and score a
// blend on those examples (LoraHub's objective). Engine-neutral: any Runtime.
import type { Blend } from '../engine/lora';
import type { Runtime } from '../runtimes/types';
import type { Example } from './examples';

/** Crayon's feature of each example, as the pool's embedder definition renders it. */
export async function embedExamples(rt: Runtime, examples: Example[], signal?: AbortSignal): Promise<Float32Array[]> {
  const texts: string[] = [];
  for (const e of examples) {
    texts.push(await rt.renderChat([{ role: 'user', content: e.input }, { role: 'assistant', content: e.output }], false));
    signal?.throwIfAborted();
  }
  return rt.embed(texts);
}

/** Mean over examples of the outputs' mean token cross-entropy (nats) under a blend. */
export async function exampleLoss(rt: Runtime, examples: Example[], blend: Blend | null, signal?: AbortSignal): Promise<number> {
  let sum = 0;
  for (const e of examples) {
    const r = await rt.score({ messages: [{ role: 'user', content: e.input }] }, [e.output], { blend, signal });
    sum -= r.mean[0];
  }
  return sum / examples.length;
}
