/**
 * The signed-in frame: header with navigation, connection state, who is signed in and Sign out;
 * the <main> region views render into; and hash routing between views.
 */
import { button, h, render } from '../lib/dom.js';
import { currentRoute, href } from '../lib/router.js';
import type { FeedMode } from '../live/feed.js';
import type { LinkState } from '../live/link.js';
import { keysView } from './admin-keys.js';
import { principalsView } from './admin-principals.js';
import { rolesView } from './admin-roles.js';
import { channelsView } from './channels.js';
import type { Cleanup, Ctx, View } from './context.js';
import { detailView } from './detail.js';
import { eventsView } from './events.js';
import { failedView } from './failed.js';
import { overviewView } from './overview.js';

const NAV: [label: string, path: string[]][] = [
  ['Overview', ['overview']],
  ['Events', ['events']],
  ['Failed', ['failed']],
  ['Channels', ['channels']],
  ['Principals', ['admin', 'principals']],
  ['Keys', ['admin', 'keys']],
  ['Roles', ['admin', 'roles']],
];

function resolve(path: string[]): { view: View; params: string[]; title: string; section: string } | null {
  const [a = 'events', b, ...rest] = path;
  if (a === 'events') return b ? { view: detailView, params: [b], title: `Event ${b}`, section: 'events' } : { view: eventsView, params: [], title: 'Events', section: 'events' };
  if (a === 'overview') return { view: overviewView, params: [], title: 'Overview', section: 'overview' };
  if (a === 'failed') return { view: failedView, params: [], title: 'Failed events', section: 'failed' };
  if (a === 'channels') return { view: channelsView, params: b ? [b, ...rest] : [], title: b ? `Channel ${b}` : 'Channels', section: 'channels' };
  if (a === 'admin') {
    const params = rest;
    if (!b || b === 'principals') return { view: principalsView, params, title: 'Principals', section: 'admin/principals' };
    if (b === 'keys') return { view: keysView, params, title: 'API keys', section: 'admin/keys' };
    if (b === 'roles') return { view: rolesView, params, title: 'Roles', section: 'admin/roles' };
  }
  return null;
}

const LINK_TEXT: Record<LinkState, string> = {
  connecting: 'Connecting…',
  connected: 'Live',
  disconnected: 'Reconnecting…',
  unauthorized: 'Key refused',
  closed: 'Offline',
};

export function mountShell(ctx: Ctx, app: HTMLElement, onSignOut: () => void): () => void {
  const main = h('main', { id: 'main', tabindex: -1 });
  const announcer = h('div', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });
  const conn = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite' });
  const who = h('span', { class: 'who mono' });
  const navList = h('ul');
  const skip = h('a', { class: 'skip', href: '#main' }, 'Skip to content');
  skip.addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
  });
  render(
    app,
    skip,
    h(
      'header',
      { class: 'top' },
      h('a', { class: 'brand', href: href('events') }, 'TEM', h('span', {}, ' console')),
      h('nav', { 'aria-label': 'Main' }, navList),
      h('div', { class: 'session' }, conn, who, button('Sign out', onSignOut, { class: 'secondary small' })),
    ),
    main,
    announcer,
  );
  ctx.say = (m) => {
    announcer.textContent = '';
    // A fresh text node after clearing makes screen readers announce repeats too.
    setTimeout(() => (announcer.textContent = m), 50);
  };

  const showConn = () => {
    const s = ctx.link.state;
    const mode: FeedMode = ctx.feed.mode;
    const polling = s === 'connected' && mode === 'polling';
    conn.textContent = polling ? 'Live · others polled' : LINK_TEXT[s];
    conn.title = polling
      ? "Your own events arrive live over the WebSocket, everyone else's by polling every 2 s."
      : '';
    conn.dataset.state = s;
    who.textContent = ctx.link.info.userId ?? '';
  };
  const offState = ctx.link.onState(showConn);
  const offMode = ctx.feed.onMode(showConn);
  showConn();

  let cleanup: Cleanup | void;
  let firstRoute = true;
  const route = () => {
    if (cleanup) cleanup();
    cleanup = undefined;
    const path = currentRoute().path;
    const r = resolve(path);
    main.replaceChildren();
    render(
      navList,
      ...NAV.map(([label, p]) => {
        const active = r?.section === p.join('/');
        return h('li', {}, h('a', { href: href(...p), 'aria-current': active ? 'page' : undefined }, label));
      }),
    );
    if (!r) {
      document.title = 'Not found · TEM console';
      main.append(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: href('events') }, 'Go to events')));
      return;
    }
    document.title = `${r.title} · TEM console`;
    cleanup = r.view(ctx, main, r.params);
    // Move focus to the new page for keyboard and screen-reader users (not on first load).
    if (!firstRoute) main.focus({ preventScroll: true });
    firstRoute = false;
  };
  window.addEventListener('hashchange', route);
  route();

  return () => {
    window.removeEventListener('hashchange', route);
    offState();
    offMode();
    if (cleanup) cleanup();
  };
}
