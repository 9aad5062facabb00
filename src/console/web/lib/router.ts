/**
 * Hash routing (`#/events`, `#/events/{id}`, `#/admin/keys/{principal}`): works from any path
 * the console is served at and needs no server routes. Each segment is URI-decoded.
 */
export interface Route {
  /** First segments joined, e.g. `events`, `admin/keys`. */
  path: string[];
}

export function currentRoute(): Route {
  const raw = location.hash.replace(/^#\/?/, '');
  const path = raw
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path };
}

export function href(...segments: string[]): string {
  return `#/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
}

export function navigate(...segments: string[]): void {
  location.hash = href(...segments);
}
