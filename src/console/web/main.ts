/**
 * The web console's entry point: sign in (or reuse this tab's session), then build the shared
 * state — API client, live link, event store, feed, throughput, health — and mount the shell.
 * Signing out (or a key the server stops accepting) tears it all down and shows sign-in again.
 */
import './styles.css';
import { Api } from './lib/api.js';
import { clearSession, loadSession, saveSession, type Session } from './lib/session.js';
import { EventStore } from './live/events.js';
import { Feed } from './live/feed.js';
import { HealthPoller } from './live/health.js';
import { resolveWsUrl } from './live/link.js';
import { createSdkLink } from './live/sdk-link.js';
import { Throughput } from './live/throughput.js';
import type { Ctx } from './views/context.js';
import { mountShell } from './views/shell.js';
import { signInView } from './views/signin.js';

const root = document.getElementById('app') as HTMLElement;

async function serverConfig(): Promise<{ ws_url: string | null }> {
  try {
    const res = await fetch('/console/config.json', { cache: 'no-store', credentials: 'omit' });
    if (res.ok) return (await res.json()) as { ws_url: string | null };
  } catch {
    /* defaults */
  }
  return { ws_url: null };
}

function showSignIn(notice?: string): void {
  signInView(
    root,
    (s) => {
      saveSession(s);
      void start(s);
    },
    notice,
  );
}

async function start(session: Session): Promise<void> {
  const cfg = await serverConfig();
  const api = new Api(session.key);
  const link = createSdkLink(resolveWsUrl(session.wsUrl, cfg.ws_url), session.key);
  const store = new EventStore();
  const throughput = new Throughput();
  const feed = new Feed(api, link, store, throughput);
  const health = new HealthPoller(api);
  const ctx: Ctx = { api, link, store, feed, throughput, health, filters: { type: '', status: '', user: '' }, say: () => undefined };

  let stopped = false;
  const stop = (notice?: string) => {
    if (stopped) return;
    stopped = true;
    unmount();
    offState();
    feed.stop();
    health.stop();
    link.close();
    clearSession();
    history.replaceState(null, '', location.pathname + location.search);
    showSignIn(notice);
  };
  api.onUnauthorized = () => stop('Your key is no longer accepted (revoked or expired). Sign in again.');
  const offState = link.onState((s) => {
    if (s === 'unauthorized') stop('The server closed the live connection: the key was refused. Sign in again.');
  });
  const unmount = mountShell(ctx, root, () => stop('Signed out.'));
  await feed.start();
}

const existing = loadSession();
if (existing) void start(existing);
else showSignIn();
