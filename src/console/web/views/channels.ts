/**
 * #/channels/{channel} — a live view of one channel: its members and their presence, and its
 * messages as they arrive. Members come from the PRESENCE frame and GET /api/presence/{channel}
 * (refreshed every 5 s: join/leave broadcast is a per-namespace option), then from
 * presence.join / presence.leave / presence.update events.
 */
import { describeError, enc } from '../lib/api.js';
import { button, errorBox, field, h, render } from '../lib/dom.js';
import { compactJson, time } from '../lib/format.js';
import { navigate } from '../lib/router.js';
import type { PresenceMember } from '../live/link.js';
import type { View } from './context.js';

const MAX_MESSAGES = 200;
const REFRESH_MS = 5000;

export const channelsView: View = (ctx, root, params) => {
  const channel = params.join('/') || '';
  const input = h('input', { type: 'text', name: 'channel', value: channel, placeholder: 'live:demo:chat', autocomplete: 'off', spellcheck: 'false', required: true });
  const form = h(
    'form',
    {
      class: 'filters',
      'aria-label': 'Watch a channel',
      onsubmit: ((e: Event) => {
        e.preventDefault();
        const c = input.value.trim();
        if (c) navigate('channels', c);
      }) as EventListener,
    },
    field('Channel', input, 'A channel name, e.g. live:42:chat or server:1:channel:7'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Watch')),
  );
  root.append(h('h1', {}, 'Channels'), form);
  if (!channel) {
    root.append(h('p', { class: 'muted' }, 'Enter a channel to see who is present and the messages published to it.'));
    return;
  }

  const err = errorBox();
  const state = h('p', { class: 'muted', 'aria-live': 'polite' }, `Subscribing to ${channel}…`);
  const members = new Map<string, string>();
  const membersBody = h('tbody');
  const log = h('ol', { class: 'messages', 'aria-label': `Messages on ${channel}`, 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: 0 });
  let count = 0;
  // A `prefix:*` subscription spans channels: presence is kept per channel, so it has none.
  const pattern = channel.endsWith(':*');

  const drawMembers = () => {
    const rows = [...members.entries()].sort(([a], [b]) => a.localeCompare(b));
    render(
      membersBody,
      ...(rows.length
        ? rows.map(([u, s]) => h('tr', { 'data-user': u }, h('td', { class: 'mono' }, u), h('td', {}, h('span', { class: `badge pr-${s}`, 'data-presence': s }, s))))
        : [h('tr', { class: 'empty' }, h('td', { colspan: 2 }, pattern ? 'Presence is kept per channel: open one channel to see its members.' : 'Nobody is present.'))]),
    );
  };
  const setMembers = (list: PresenceMember[]) => {
    members.clear();
    for (const m of list) if (m.status !== 'offline') members.set(m.user_id, m.status);
    drawMembers();
  };

  root.append(
    h('h2', {}, 'Channel ', h('span', { class: 'mono' }, channel)),
    state,
    err.el,
    h(
      'div',
      { class: 'channel-grid' },
      h(
        'section',
        { 'aria-label': 'Members' },
        h('h3', {}, 'Members'),
        h('table', { class: 'members' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'User'), h('th', { scope: 'col' }, 'Presence'))), membersBody),
        ...(pattern ? [] : [button('Refresh presence', () => void refresh(), { class: 'secondary small' })]),
      ),
      h('section', { 'aria-label': 'Messages' }, h('h3', {}, 'Messages'), log),
    ),
  );
  drawMembers();

  async function refresh() {
    if (pattern) return;
    try {
      const body = await ctx.api.get<{ members?: PresenceMember[]; data?: PresenceMember[] }>(`/api/presence/${enc(channel)}`);
      setMembers(body.members ?? body.data ?? []);
    } catch (e) {
      // Fall back to the socket's view of presence.
      try {
        setMembers(await ctx.link.presence(channel));
      } catch {
        err.show(`Presence unavailable: ${describeError(e)}`);
      }
    }
  }

  const off = ctx.link.onEvent((ev) => {
    if (pattern ? !ev.channel.startsWith(channel.slice(0, -1)) : ev.channel !== channel) return;
    const p = (ev.payload ?? {}) as { user_id?: string; status?: string };
    // On a pattern, presence notices of its channels are listed, not tallied.
    if (!pattern && (ev.event === 'presence.join' || ev.event === 'presence.update')) {
      if (p.user_id) members.set(p.user_id, p.status && p.status !== 'offline' ? p.status : 'online');
      drawMembers();
    } else if (!pattern && ev.event === 'presence.leave') {
      if (p.user_id) members.delete(p.user_id);
      drawMembers();
    }
    count++;
    log.prepend(
      h(
        'li',
        { class: ev.event.startsWith('presence.') || ev.event === 'typing' ? 'meta' : '' },
        h('span', { class: 'when' }, time(new Date().toISOString())),
        h('span', { class: 'ev mono' }, pattern ? `${ev.channel} ${ev.event}` : ev.event),
        h('span', { class: 'off mono', title: 'offset' }, ev.offset === null ? '' : `#${ev.offset}`),
        h('code', { class: 'data' }, compactJson(ev.payload, 300)),
      ),
    );
    while (log.children.length > MAX_MESSAGES) log.lastElementChild?.remove();
    state.textContent = `Watching ${channel}: ${count} message${count === 1 ? '' : 's'} received.`;
  });

  let alive = true;
  ctx.link
    .subscribe(channel)
    .then(async () => {
      if (!alive) return;
      state.textContent = `Watching ${channel}.`;
      setMembers(await ctx.link.presence(channel).catch(() => [...members.entries()].map(([user_id, status]) => ({ user_id, status }))));
      await refresh();
    })
    .catch((e) => {
      if (!alive) return;
      state.textContent = `Not subscribed to ${channel}.`;
      err.show(describeError(e));
      void refresh();
    });
  const timer = setInterval(() => void refresh(), REFRESH_MS);

  return () => {
    alive = false;
    off();
    clearInterval(timer);
    ctx.link.unsubscribe(channel);
  };
};
