// A conversation with the assistant: messages, the reply being streamed, stop.
// Each question goes to the router worker: it answers on the device, or sends
// the question to the server under the user's policy, and the answer records
// where it ran and why. The customization reaches the router as its centroid
// (for scope, kept in the worker) and weights (all a server ever gets).
import { AbortError, isAppError } from '../lib/errors';
import type { RpcClient } from '../lib/protocol/rpc';
import type { RouterCustomization, RouterProtocol } from '../lib/router/protocol';
import type { ChatMessage } from '../lib/router/router';
import type { Settings } from '../lib/settings';

export interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** Where and why it ran, and its scores (assistant turns). */
  route?: { where: 'device' | 'server'; reason: string; scores: { scope?: number; confidence?: number } };
  notice?: string;
  /** The device's draft, when the answer was escalated to the server. */
  draft?: string;
  stopped?: boolean;
}

const REASONS: Record<string, string> = {
  'policy-local-only': 'you chose this device only',
  'policy-server-only': 'you chose the server only',
  'in-scope-confident': 'in scope and confident',
  'out-of-scope': 'outside what this assistant was customized for',
  'low-confidence': 'the device was not confident',
  'no-customization': 'confident (no customization to judge scope)',
  'server-unavailable': 'no server available',
};

export class ChatState {
  turns = $state<Turn[]>([]);
  busy = $state(false);
  error = $state<string | null>(null);
  private controller: AbortController | null = null;

  constructor(
    private readonly router: () => RpcClient<RouterProtocol> | null,
    private readonly settings: () => Settings,
    private readonly customization: () => RouterCustomization | null = () => null,
  ) {}

  async send(text: string, maxTokens = 96): Promise<void> {
    const router = this.router();
    const content = text.trim();
    if (!router || !content || this.busy) return;
    this.error = null;
    this.turns.push({ role: 'user', content });
    const history: ChatMessage[] = this.turns.map((t) => ({ role: t.role, content: t.content }));
    this.turns.push({ role: 'assistant', content: '' });
    const reply = this.turns[this.turns.length - 1];
    this.busy = true;
    this.controller = new AbortController();
    const s = this.settings();
    let streaming: 'device' | 'server' = 'device';
    try {
      await router.call('configure', {
        policy: s.policy,
        thresholds: { ...s.thresholds },
        customization: this.customization(),
        server: s.serverUrl ? { baseUrl: s.serverUrl, apiKey: s.apiKey, model: s.serverModel } : null,
      });
      const a = await router.call('answer', { query: { messages: history, maxTokens } }, {
        signal: this.controller.signal,
        onProgress: ({ text: t, route }) => {
          if (route !== streaming) {
            reply.draft = reply.content; // the device's draft, escalated
            reply.content = '';
            streaming = route;
          }
          reply.content += t;
        },
      });
      reply.content = a.text;
      const ranOn = a.notice ? 'device' : a.decision.route;
      reply.route = { where: ranOn, reason: REASONS[a.decision.reason] ?? a.decision.reason, scores: a.decision.scores };
      reply.notice = a.notice;
      reply.draft = a.deviceDraft;
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
