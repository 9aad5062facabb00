/**
 * LiveLink over the project's client SDK (src/client, bundled from source). The SDK owns the
 * protocol: HELLO with the key (never in the URL), heartbeats, reconnect with backoff, resume
 * and resubscribe. This adapter only maps its events to what the console's views need —
 * including presence and typing notices, which the SDK hands to the subscription, not the client.
 */
import { ClientState, TemClient, type Subscription, type TemClientError } from '../../../client/index.js';
import { LinkError, type LinkInfo, type LinkState, type LiveEvent, type LiveLink, type PresenceMember } from './link.js';

const SUBSCRIBE_TIMEOUT_MS = 10_000;

export function createSdkLink(url: string, token: string): LiveLink {
  const client = new TemClient(url, { token });
  const stateFns = new Set<(s: LinkState) => void>();
  const eventFns = new Set<(e: LiveEvent) => void>();
  const subs = new Map<string, { sub: Subscription; offs: (() => void)[] }>();
  let refused = false;
  let state: LinkState = 'connecting';

  const setState = (s: LinkState) => {
    if (s === state) return;
    state = s;
    for (const fn of stateFns) fn(s);
  };
  const emit = (e: LiveEvent) => {
    for (const fn of eventFns) fn(e);
  };

  client.on('error', (err: TemClientError) => {
    if (err.code === 'UNAUTHORIZED') refused = true;
  });
  // Closed is decided here, not on the state change: the SDK reports the state first and the
  // error and close code (4001: the key was refused) after it.
  client.on('disconnected', (d) => {
    if (d.code === 4001) refused = true;
    if (!d.reconnect) setState(refused ? 'unauthorized' : 'closed');
  });
  client.on('state', ({ newState }) => {
    if (newState === ClientState.Connected) setState('connected');
    else if (newState === ClientState.Connecting) setState(state === 'connected' ? 'disconnected' : 'connecting');
    else if (newState === ClientState.Disconnected) setState('disconnected');
  });
  client.on('publication', (p) => emit({ channel: p.channel, event: p.event, payload: p.payload, offset: p.offset ?? null, epoch: p.epoch ?? null }));
  client.connect();

  return {
    get state() {
      return state;
    },
    get info(): LinkInfo {
      const c = client.connection;
      return { userId: c?.user_id ?? null, sessionId: c?.session_id ?? null };
    },
    onState(fn) {
      stateFns.add(fn);
      return () => stateFns.delete(fn);
    },
    onEvent(fn) {
      eventFns.add(fn);
      return () => eventFns.delete(fn);
    },
    async subscribe(channel) {
      let entry = subs.get(channel);
      if (!entry) {
        const sub = client.getSubscription(channel) ?? client.newSubscription(channel);
        let lastError: TemClientError | null = null;
        const offs = [
          sub.on('error', (e) => (lastError = e)),
          sub.on('presence', (e) => emit({ channel: e.channel, event: `presence.${e.action}`, payload: { user_id: e.user_id, status: e.status }, offset: null, epoch: null })),
          sub.on('typing', (e) => emit({ channel: e.channel, event: 'typing', payload: { user_id: e.user_id, is_typing: e.is_typing }, offset: null, epoch: null })),
        ];
        entry = { sub, offs };
        subs.set(channel, entry);
        sub.subscribe();
        try {
          await sub.ready(SUBSCRIBE_TIMEOUT_MS);
        } catch (e) {
          this.unsubscribe(channel);
          const err = (lastError ?? e) as TemClientError;
          throw new LinkError(err.code ?? 'INTERNAL', err.message);
        }
        return;
      }
      await entry.sub.ready(SUBSCRIBE_TIMEOUT_MS);
    },
    unsubscribe(channel) {
      const entry = subs.get(channel);
      if (!entry) return;
      subs.delete(channel);
      for (const off of entry.offs) off();
      client.removeSubscription(entry.sub);
    },
    async presence(channel) {
      const members = await client.presence(channel);
      return members.map((m): PresenceMember => ({ user_id: m.user_id, status: m.status }));
    },
    close() {
      for (const ch of [...subs.keys()]) this.unsubscribe(ch);
      client.disconnect();
      client.removeAllListeners();
      setState('closed');
    },
  };
}
