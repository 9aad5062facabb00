/**
 * Sign-in: an API key, checked against the API before it is kept (in sessionStorage only).
 * The WebSocket URL can be set here when the gateway is not on this origin.
 */
import { Api, ApiError } from '../lib/api.js';
import { errorBox, field, h } from '../lib/dom.js';
import type { Session } from '../lib/session.js';

export function signInView(root: HTMLElement, onSignedIn: (s: Session) => void, notice?: string): void {
  const err = errorBox();
  const key = h('input', { type: 'password', name: 'api-key', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'tem_…' });
  const ws = h('input', { type: 'url', name: 'ws-url', placeholder: 'default: this server’s /ws', autocomplete: 'off', spellcheck: 'false' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin card', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to TelemetryEventMesh'),
    notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
    field('API key', key, 'The key is kept for this browser tab only and sent in the X-API-Key header.'),
    h('details', {}, h('summary', {}, 'Connection options'), field('WebSocket URL', ws, 'Only when the gateway runs elsewhere, e.g. ws://gateway:8090/ws')),
    err.el,
    submit,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const k = key.value.trim();
    if (!k) return;
    submit.disabled = true;
    err.show(null);
    // Any authenticated call proves the key; 403 means valid but limited, which is fine.
    new Api(k)
      .request('GET', '/api/events', { query: { limit: 1 }, allow: [403] })
      .then(() => {
        key.value = '';
        onSignedIn({ key: k, wsUrl: ws.value.trim() || null });
      })
      .catch((ex: unknown) => {
        submit.disabled = false;
        err.show(ex instanceof ApiError && ex.status === 401 ? 'This key was not accepted (unknown, revoked or expired).' : `Could not sign in: ${(ex as Error).message}`);
        key.focus();
      });
  });
  root.replaceChildren(h('main', { id: 'main', class: 'signin-page' }, form));
  key.focus();
}
