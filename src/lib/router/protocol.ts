// The router worker's messages. The page configures the router once per
// settings or customization change, then asks it to answer queries; tokens
// stream back as progress, tagged with where they were produced.
import type { RoutingPolicy, Thresholds } from './policy';
import type { Answer, ChatMessage, Query } from './router';

export interface ServerTarget {
  /** OpenAI-compatible base URL, e.g. http://127.0.0.1:8787/v1 */
  baseUrl: string;
  apiKey?: string;
  /** Model to ask for; empty = the server's first model. */
  model?: string;
}

/** What the router knows of the user's customization: never the examples. */
export interface RouterCustomization {
  /** Mean feature of the examples: the scope reference (stays in the router). */
  centroid: Float32Array;
  /** Blend weights per adapter id: the only part a server receives. */
  weights: Record<string, number>;
}

/** Earlier turns an escalated question may take along: none, or this conversation's turns not asked under "This device only". */
export type SendHistory = 'none' | 'shared';

export interface RouterSetup {
  policy: RoutingPolicy;
  /** Default 'none': only the current question leaves the device. */
  history?: SendHistory;
  thresholds: Thresholds;
  customization: RouterCustomization | null;
  server: ServerTarget | null;
}

export type RouterProtocol = {
  configure: { params: RouterSetup; result: null };
  answer: { params: { query: Query }; result: Answer; progress: { text: string; route: 'device' | 'server' } };
  /** Sends the customization's weights to the server now (or reuses the id it gave); null without the extension. */
  serverCustomization: { params: null; result: string | null };
};

export type { ChatMessage };
