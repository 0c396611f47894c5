// A conversation with the assistant: messages, the reply being streamed, stop.
import { AbortError, isAppError } from '../lib/errors';
import type { ChatMessage, Runtime } from '../lib/runtimes/types';

export interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** Where and why it ran, and its scores (assistant turns). */
  route?: { where: 'device' | 'server'; reason: string; scores: Record<string, number | undefined> };
  notice?: string;
  stopped?: boolean;
}

export class ChatState {
  turns = $state<Turn[]>([]);
  busy = $state(false);
  error = $state<string | null>(null);
  private controller: AbortController | null = null;

  constructor(private readonly runtime: () => Runtime | null) {}

  async send(text: string, maxTokens = 96): Promise<void> {
    const rt = this.runtime();
    const content = text.trim();
    if (!rt || !content || this.busy) return;
    this.error = null;
    this.turns.push({ role: 'user', content });
    const history: ChatMessage[] = this.turns.map((t) => ({ role: t.role, content: t.content }));
    this.turns.push({ role: 'assistant', content: '' });
    const reply = this.turns[this.turns.length - 1];
    this.busy = true;
    this.controller = new AbortController();
    try {
      const r = await rt.generate({ messages: history, maxTokens }, { signal: this.controller.signal, onToken: (t) => (reply.content += t) });
      reply.content = r.text;
      const mean = r.logprobs.length ? r.logprobs.reduce((a, b) => a + b, 0) / r.logprobs.length : undefined;
      reply.route = { where: 'device', reason: 'no server in use', scores: { confidence: mean } };
    } catch (e) {
      if (e instanceof AbortError) reply.stopped = true;
      else {
        this.error = isAppError(e) ? e.message : String(e);
        // The question stays in the conversation; the failed empty reply goes.
        if (!reply.content) this.turns.pop();
      }
    } finally {
      this.busy = false;
      this.controller = null;
    }
  }

  stop(): void {
    this.controller?.abort();
  }

  clear(): void {
    this.stop();
    this.turns = [];
  }
}
