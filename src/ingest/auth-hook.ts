/**
 * The one place permissions are checked. A route declares `config: { permission }`; this hook
 * authenticates the caller (X-API-Key or Authorization: Bearer), answers 401 without valid
 * credentials and 403 without the permission, applies the per-key rate limit, and leaves the
 * AuthContext on `request.auth`. Handlers never check permissions themselves.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TokenAuthenticator } from '../auth/types.js';
import { can } from '../auth/policy.js';
import { createError } from '../core/errors.js';
import { bindLog } from './log-bindings.js';
import type { RequestLimiter } from './rate-limit.js';

/** The bearer token of a request, from X-API-Key or Authorization: Bearer. */
export function requestToken(request: FastifyRequest): string | undefined {
  const apiKey = request.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.length > 0) return apiKey.trim();
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return undefined;
}

export function installAuthHook(app: FastifyInstance, authenticator: TokenAuthenticator, limiter: RequestLimiter): void {
  app.addHook('onRequest', async (request, reply) => {
    const permission = request.routeOptions.config?.permission;
    if (!permission) return;
    const token = requestToken(request);
    if (!token) throw createError('UNAUTHORIZED', 'Send an API key in X-API-Key or Authorization: Bearer');
    const ctx = await authenticator.authenticate(token);
    request.auth = ctx;
    bindLog(request, { principal: ctx.principalId });
    // Limited before the permission check, so probing forbidden routes counts too.
    await limiter.consume(ctx, reply);
    if (!can(ctx, permission)) throw createError('FORBIDDEN', `This key lacks the permission ${permission}`);
  });
}
