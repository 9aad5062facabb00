/**
 * Which methods a path has routes for, so a request with the wrong method gets `405` with an
 * `Allow` header (RFC 9110 §15.5.6) instead of a `404` that says the resource does not exist.
 * Fastify's router does not answer "which methods match this path", so the routes are collected
 * as they are added (`onRoute`) and their patterns matched here. Catch-all routes (`*`, such as
 * the CORS preflight route) say nothing about a path and are left out.
 */
import type { FastifyInstance } from 'fastify';

interface RoutePattern {
  re: RegExp;
  methods: Set<string>;
  /** No parameters: `/api/events/batch`, which shadows `/api/events/:id` for that path. */
  fixed: boolean;
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `/api/events/:id/retry` → /^\/api\/events\/[^/]+\/retry\/?$/; `/console/*` → prefix match. */
function compile(url: string): RegExp {
  const parts = url.split('/').map((segment) => {
    if (segment === '*') return '.*';
    // A segment with parameters (`:id`, `:from-:to`, `:id(^\\d+)`): any text between the slashes.
    if (segment.includes(':')) return '[^/]+';
    return escapeRe(segment);
  });
  // The router ignores a trailing slash (routerOptions.ignoreTrailingSlash).
  return new RegExp(`^${parts.join('/').replace(/\/$/, '')}/?$`);
}

export class AllowedMethods {
  private readonly byUrl = new Map<string, RoutePattern>();

  /** Collects every route added to `app` and its child contexts from now on. */
  track(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const url = route.url;
      if (url === '*' || url === '/*') return;
      let entry = this.byUrl.get(url);
      if (!entry) {
        entry = { re: compile(url), methods: new Set(), fixed: !url.includes(':') && !url.includes('*') };
        this.byUrl.set(url, entry);
      }
      for (const method of [route.method].flat()) entry.methods.add(method.toUpperCase());
    });
  }

  /**
   * The methods with a route for `path`, sorted; empty when no route matches it at all. A path
   * that names a route without parameters is that route's alone: `/api/events/batch` takes
   * POST, although `GET /api/events/:id` would match it too (and refuse `batch` as an id).
   */
  for(path: string): string[] {
    const fixed = this.matching(path, true);
    return fixed.length > 0 ? fixed : this.matching(path, false);
  }

  /** The methods of the parameterless routes for `path` (see for()). */
  fixedFor(path: string): string[] {
    return this.matching(path, true);
  }

  private matching(path: string, fixedOnly: boolean): string[] {
    const methods = new Set<string>();
    for (const { re, methods: m, fixed } of this.byUrl.values()) if ((fixed || !fixedOnly) && re.test(path)) m.forEach((x) => methods.add(x));
    return [...methods].sort();
  }
}
