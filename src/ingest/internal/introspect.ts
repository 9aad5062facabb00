/**
 * POST /internal/auth/introspect {token}: how gateways in distributed mode authenticate a
 * client. An invalid, expired or revoked token is `{active: false}` (200); a database outage
 * is a 503, so a gateway never mistakes "cannot tell" for "revoked".
 */
import type { FastifyRequest } from 'fastify';
import { jwtSettingsDigest } from '../../auth/jwt.js';
import { effectivePermissions } from '../../auth/policy.js';
import { isTemError } from '../../core/errors.js';
import type { InternalRoutePlugin } from '../internal-types.js';

const bodySchema = {
  type: 'object',
  required: ['token'],
  additionalProperties: false,
  properties: { token: { type: 'string', minLength: 1, maxLength: 16384 } },
} as const;

export const introspectRoutes: InternalRoutePlugin = async (app, { authenticator, config }) => {
  const jwtSettings = jwtSettingsDigest(config);
  app.post('/internal/auth/introspect', { schema: { body: bodySchema } }, async (request: FastifyRequest<{ Body: { token: string } }>) => {
    try {
      const ctx = await authenticator.authenticate(request.body.token);
      return {
        active: true,
        principal_id: ctx.principalId,
        kind: ctx.kind,
        user_id: ctx.userId,
        role: ctx.role,
        // role ∪ extra − revoked (contract §1); `revoked` keeps exceptions to wider grants.
        permissions: effectivePermissions(ctx),
        revoked: ctx.revoked,
        channels: ctx.channels,
        expires_at: ctx.expiresAt ? ctx.expiresAt.toISOString() : null,
        key_id: ctx.keyId,
        via: ctx.via,
        // Lets a gateway that verifies JWTs itself check it does so with the same settings.
        ...(ctx.via === 'jwt' ? { jwt_settings: jwtSettings } : {}),
      };
    } catch (err) {
      if (isTemError(err) && err.code === 'UNAUTHORIZED') return { active: false };
      throw err;
    }
  });
};
