/**
 * What the console needs from the real-time connection, whichever code speaks the protocol:
 * a connection state, the EVENT frames of its subscriptions, subscribe/unsubscribe, and a
 * presence query. Views depend on this, not on the SDK, so they stay small and testable.
 */
export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'unauthorized' | 'closed';

export interface LiveEvent {
  channel: string;
  event: string;
  payload: unknown;
  offset: number | null;
  epoch: string | null;
}

export interface PresenceMember {
  user_id: string;
  status: string;
}

export interface LinkInfo {
  userId: string | null;
  sessionId: string | null;
}

export interface LiveLink {
  readonly state: LinkState;
  readonly info: LinkInfo;
  onState(fn: (state: LinkState) => void): () => void;
  onEvent(fn: (ev: LiveEvent) => void): () => void;
  /** Resolves once subscribed; rejects (e.g. FORBIDDEN) when refused. Kept across reconnects. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): void;
  presence(channel: string): Promise<PresenceMember[]>;
  close(): void;
}

export class LinkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'LinkError';
  }
}

/** The gateway's URL: explicit, or from the server's console config, or this origin's /ws. */
export function resolveWsUrl(explicit: string | null, fromServer: string | null): string {
  const chosen = explicit || fromServer;
  if (chosen) return chosen;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws`;
}
