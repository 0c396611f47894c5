// A conversation with the assistant: messages, the reply being streamed, stop,
// regenerate; conversations are kept in IndexedDB on this device.
// Each question goes to the router worker: it answers on the device, or sends
// the question to the server under the user's policy, and the answer records
// where it ran and why. The customization reaches the router as its centroid
// (for scope, kept in the worker) and weights (all a server ever gets).
import { createStore, del, entries, get, set, type UseStore } from 'idb-keyval';
import { AbortError, isAppError, messageOf } from '../lib/errors';
import type { RpcClient } from '../lib/protocol/rpc';
import type { RouterCustomization, RouterProtocol } from '../lib/router/protocol';
import type { RoutingPolicy } from '../lib/router/policy';
import type { ChatMessage, Sent } from '../lib/router/router';
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
  /** A user turn: the policy it was asked under (a turn asked under "This device only" never leaves the device). */
  asked?: RoutingPolicy;
  /** An assistant turn: exactly what was sent to the server for it. */
  sent?: Sent;
}

/** A route decision's reason in words, as the chat and the widget show it. */
export const REASONS: Record<string, string> = {
  'policy-local-only': 'you chose this device only',
  'policy-server-only': 'you chose the server only',
  'in-scope-confident': 'in scope and confident',
  'out-of-scope': "outside what this assistant was customized for, so the server's general model answered",
  'low-confidence': 'the device was not confident',
  'no-customization': 'confident (no customization to judge scope)',
  'server-unavailable': 'no server available',
};

export interface ConversationMeta {
  id: string;
  title: string;
  updated: string;
}

interface StoredConversation extends ConversationMeta {
  turns: Turn[];
}

const convKey = (id: string) => `conversation:${id}`;
const newId = () => `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

export class ChatState {
  turns = $state<Turn[]>([]);
  busy = $state(false);
  error = $state<string | null>(null);
  conversations = $state<ConversationMeta[]>([]);
  currentId = $state(newId());
  private controller: AbortController | null = null;

  constructor(
    private readonly router: () => RpcClient<RouterProtocol> | null,
    private readonly settings: () => Settings,
    private readonly customization: () => RouterCustomization | null = () => null,
    private readonly store: UseStore = createStore('crayon-chat', 'kv'),
  ) {}

  /** Lists the stored conversations and opens the latest. */
  async load(): Promise<void> {
    try {
      const all = (await entries<string, StoredConversation>(this.store)).filter(([k]) => String(k).startsWith('conversation:')).map(([, v]) => v);
      all.sort((a, b) => b.updated.localeCompare(a.updated));
      this.conversations = all.map(({ id, title, updated }) => ({ id, title, updated }));
      if (all[0] && this.turns.length === 0) {
        this.currentId = all[0].id;
        this.turns = all[0].turns;
      }
    } catch (e) {
      this.error = `Saved conversations could not be read (${messageOf(e)}).`;
    }
  }

  async open(id: string): Promise<void> {
    if (this.busy) return;
    const c = await get<StoredConversation>(convKey(id), this.store);
    if (!c) return;
    this.currentId = id;
    this.turns = c.turns;
  }

  startNew(): void {
    if (this.busy) return;
    this.currentId = newId();
    this.turns = [];
  }

  /** Saves the conversation in view; a full disk is reported, the conversation stays on screen. */
  private async persist(): Promise<void> {
    if (this.turns.length === 0) return;
    const meta = { id: this.currentId, title: this.turns[0].content.slice(0, 60), updated: new Date().toISOString() };
    try {
      await set(convKey(meta.id), { ...meta, turns: $state.snapshot(this.turns) }, this.store);
      this.conversations = [meta, ...this.conversations.filter((c) => c.id !== meta.id)];
    } catch (e) {
      this.error = `This conversation could not be saved on this device (${messageOf(e)}); it stays here until you close the page.`;
    }
  }

  async send(text: string, maxTokens = 96): Promise<void> {
    const content = text.trim();
    if (!this.router() || !content || this.busy) return;
    this.turns.push({ role: 'user', content, asked: this.settings().policy });
    await this.reply(maxTokens);
  }

  /** Asks again for the last answer (the last user message stays). */
  async regenerate(maxTokens = 96): Promise<void> {
    if (this.busy || !this.router()) return;
    while (this.turns.length && this.turns[this.turns.length - 1].role === 'assistant') this.turns.pop();
    if (this.turns.length) await this.reply(maxTokens);
  }

  private async reply(maxTokens: number): Promise<void> {
    const router = this.router()!;
    this.error = null;
    const history: ChatMessage[] = this.turns.map((t) => ({ role: t.role, content: t.content, ...(t.asked ? { askedUnder: t.asked } : {}) }));
    this.turns.push({ role: 'assistant', content: '' });
    const reply = this.turns[this.turns.length - 1];
    this.busy = true;
    this.controller = new AbortController();
    const s = this.settings();
    let streaming: 'device' | 'server' = 'device';
    try {
      await router.call('configure', {
        policy: s.policy,
        history: s.sendHistory,
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
      reply.sent = a.sent;
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
      await this.persist();
    }
  }

  stop(): void {
    this.controller?.abort();
  }

  /** Empties the conversation in view and forgets it on this device. */
  async clear(): Promise<void> {
    this.stop();
    const id = this.currentId;
    this.turns = [];
    await del(convKey(id), this.store).catch(() => undefined);
    this.conversations = this.conversations.filter((c) => c.id !== id); // listed until it is gone from storage
  }
}
