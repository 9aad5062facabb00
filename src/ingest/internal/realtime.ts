/**
 * Internal routes distributed gateways call (they hold no database connection):
 *
 * - POST /internal/channels/membership {channel, user_id} → {member}: the membership half of
 *   the channel access rule (the rest is decided on the gateway from the AuthContext).
 * - POST /internal/channels/members {channel} → {members}: the registered members, which the
 *   PRESENCE frame lists as offline while they are not connected.
 * - POST /internal/realtime/ingest {token, event} → 202 {event_id, status, replayed} (200 for a
 *   replay): an INGEST frame on behalf of the connection's token, which is authenticated again
 *   here, with exactly the rules of POST /api/events. Errors are problem+json; the gateway turns
 *   them into ERROR frames.
 */
import type { FastifyRequest } from 'fastify';
import { can } from '../../auth/policy.js';
import { createError } from '../../core/errors.js';
import { INTERNAL_INGEST_PATH } from '../../gateway/ingest-port.js';
import { PRINCIPAL_ID_PATTERN } from '../event-input.js';
import type { InternalRoutePlugin } from '../internal-types.js';

const INGEST = 'events.post.event_ingest';

const channelProperty = { type: 'string', minLength: 1, maxLength: 255 } as const;

const membershipSchema = {
  type: 'object',
  required: ['channel', 'user_id'],
  additionalProperties: false,
  properties: {
    channel: channelProperty,
    user_id: { type: 'string', pattern: PRINCIPAL_ID_PATTERN },
  },
} as const;

const membersSchema = {
  type: 'object',
  required: ['channel'],
  additionalProperties: false,
  properties: { channel: channelProperty },
} as const;

const ingestSchema = {
  type: 'object',
  required: ['token', 'event'],
  additionalProperties: false,
  properties: {
    token: { type: 'string', minLength: 1, maxLength: 16384 },
    event: {},
  },
} as const;

export const realtimeInternalRoutes: InternalRoutePlugin = async (app, { store, ingest, authenticator, limiter }) => {
  app.post(
    '/internal/channels/membership',
    { schema: { body: membershipSchema } },
    async (request: FastifyRequest<{ Body: { channel: string; user_id: string } }>) => {
      if (!store) throw createError('STORE_UNAVAILABLE', 'Membership is not available in this process');
      return { member: await store.isChannelMember(request.body.channel, request.body.user_id) };
    },
  );

  app.post(
    '/internal/channels/members',
    { schema: { body: membersSchema } },
    async (request: FastifyRequest<{ Body: { channel: string } }>) => {
      if (!store) throw createError('STORE_UNAVAILABLE', 'Membership is not available in this process');
      return { members: await store.listChannelMembers(request.body.channel) };
    },
  );

  app.post(INTERNAL_INGEST_PATH, { schema: { body: ingestSchema } }, async (request: FastifyRequest<{ Body: { token: string; event: unknown } }>, reply) => {
    if (!ingest) throw createError('STORE_UNAVAILABLE', 'Ingest is not available in this process');
    const auth = await authenticator.authenticate(request.body.token);
    if (!can(auth, INGEST)) throw createError('FORBIDDEN', `This key lacks the permission ${INGEST}`);
    await limiter?.count(auth);
    const result = await ingest.ingest(auth, request.body.event, undefined, { field: 'payload' });
    reply.code(result.outcome === 'created' ? 202 : 200);
    return {
      event_id: result.event.id,
      status: 'accepted', // a replay gets the original answer again, as POST /api/events
      replayed: result.outcome === 'replayed',
    };
  });
};
