/**
 * The signed-in key lives in sessionStorage only: it is gone when the tab closes, is not shared
 * with other tabs, and never appears in a URL (which would end up in logs and history).
 */
const KEY = 'tem.console.key';
const WS = 'tem.console.ws_url';

export interface Session {
  key: string;
  /** Explicit WebSocket URL chosen at sign-in; null = the server's default. */
  wsUrl: string | null;
}

export function loadSession(): Session | null {
  try {
    const key = sessionStorage.getItem(KEY);
    return key ? { key, wsUrl: sessionStorage.getItem(WS) } : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session): void {
  sessionStorage.setItem(KEY, s.key);
  if (s.wsUrl) sessionStorage.setItem(WS, s.wsUrl);
  else sessionStorage.removeItem(WS);
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(WS);
}
