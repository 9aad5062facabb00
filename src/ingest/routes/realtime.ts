/**
 * Real-time HTTP routes (contract §3): server-side publish, channel membership and presence.
 *
 * - POST /api/publish {channel, event, payload} → {offset, epoch}: an ephemeral publication,
 *   kept in the channel's history only (not an event; nothing is stored in the database).
 * - PUT / DELETE /api/channels/{channel}/members/{user_id} → 204: who may subscribe (idempotent).
 *   DELETE also tells every gateway (bus control `membership_removed`), which ends the user's live
 *   subscriptions to the channel unless a claim or permission still grants it.
 * - GET /api/channels/{channel}/members → {channel, members: [user_id]}.
 * - GET /api/presence/{channel} → {channel, members: [{user_id, status}]}: live members with
 *   their best status, then registered members who are not connected, as `offline`. A caller who
 *   may not subscribe to the channel gets 404, as if it did not exist.
 *
 * Needs `bus` (publish) and `presence` (presence list) in the route deps; without them those
 * routes answer 503 (without a bus, DELETE of a member has no gateway to tell and still succeeds).
 */
import type { FastifyRequest } from 'fastify';
import type { Bus } from '../../bus/types.js';
import { can } from '../../auth/policy.js';
import { namespaceOptions } from '../../config/index.js';
import { createError } from '../../core/errors.js';
import { checkPayload } from '../../core/payload-check.js';
import { storeChannelAccess } from '../../gateway/access.js';
import type { PresenceStore } from '../../presence/types.js';
import { withOfflineMembers } from '../../presence/status.js';
import { EVENT_NAME_DESCRIPTION, EVENT_NAME_RE, isChannelName, RESERVED_EVENT_NAMES } from '../../protocol/frames.js';
import { describedPattern } from '../ajv.js';
import { PRINCIPAL_ID_PATTERN } from '../event-input.js';
import { refuseBody } from '../no-body.js';
import { CHANNEL_PUBLISH_PERMISSION } from '../service.js';
import type { ApiRoutePlugin, RouteDeps } from '../types.js';

const PUBLISH = CHANNEL_PUBLISH_PERMISSION;
const MEMBERS_WRITE = 'channels.put.channel_members';
const MEMBERS_READ = 'channels.get.channel_members';
const PRESENCE = 'presence.get.presence_list';

/** Same alphabet as client PUBLISH: event names the gateway would carry. */
const EVENT_NAME_PATTERN = describedPattern(EVENT_NAME_RE.source, EVENT_NAME_DESCRIPTION);

const publishSchema = {
  type: 'object',
  required: ['channel', 'event', 'payload'],
  additionalProperties: false,
  properties: {
    channel: { type: 'string', minLength: 1, maxLength: 255 },
    event: { type: 'string', pattern: EVENT_NAME_PATTERN },
    payload: {},
  },
} as const;

const channelParams = {
  type: 'object',
  required: ['channel'],
  properties: { channel: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

const memberParams = {
  type: 'object',
  required: ['channel', 'user_id'],
  properties: {
    channel: { type: 'string', minLength: 1, maxLength: 255 },
    user_id: { type: 'string', pattern: PRINCIPAL_ID_PATTERN },
  },
} as const;

/** Extra dependencies the composition root passes along with RouteDeps. */
export interface RealtimeRouteDeps {
  bus?: Bus;
  presence?: PresenceStore;
}

function exactChannel(channel: string, field: string): string {
  if (!isChannelName(channel)) {
    throw createError('VALIDATION_FAILED', `${field} must be a channel name (namespace:part, no pattern)`, { field });
  }
  return channel;
}

/**
 * A channel that memberships can open: `user:{id}…` channels belong to their user alone (contract
 * §4), so a membership there would grant nothing and only say otherwise.
 */
function memberChannel(channel: string): string {
  exactChannel(channel, 'params.channel');
  if (channel.startsWith('user:')) {
    throw createError('VALIDATION_FAILED', 'params.channel is a user:{id} channel: only that user may subscribe, memberships do not apply', { field: 'params.channel' });
  }
  return channel;
}

export const realtimeRoutes: ApiRoutePlugin = async (app, opts) => {
  const { store, config, clock, logger, bus, presence } = opts as RouteDeps & RealtimeRouteDeps;
  const access = storeChannelAccess(store);

  app.post(
    '/api/publish',
    { config: { permission: PUBLISH }, schema: { body: publishSchema } },
    async (request: FastifyRequest<{ Body: { channel: string; event: string; payload: unknown } }>) => {
      const { channel, event, payload } = request.body;
      exactChannel(channel, 'body.channel');
      // The gateway's own notices (typing, presence, status updates) cannot be forged from
      // outside: subscribers would act on them, and a typing notice skips the user it names.
      if (RESERVED_EVENT_NAMES.test(event)) {
        throw createError('VALIDATION_FAILED', `body.event ${event} is reserved for the server's own notices`, { field: 'body.event' });
      }
      checkPayload(payload, 'body.payload');
      const size = Buffer.byteLength(JSON.stringify(payload) ?? '', 'utf8');
      if (size > config.maxPayloadBytes) {
        throw createError('TOO_LARGE', `body.payload is ${size} bytes; the limit is ${config.maxPayloadBytes}`, { field: 'body.payload' });
      }
      if (!bus) throw createError('BUS_UNAVAILABLE', 'Publishing is not available in this process');
      const pub = await bus.publish(channel, event, payload);
      return { offset: pub.offset, epoch: pub.epoch };
    },
  );

  // Membership routes take no body: a field (a role, an expiry) is refused rather than ignored.
  app.put(
    '/api/channels/:channel/members/:user_id',
    { config: { permission: MEMBERS_WRITE }, schema: { params: memberParams }, preValidation: refuseBody('a membership') },
    async (request: FastifyRequest<{ Params: { channel: string; user_id: string } }>, reply) => {
      const channel = memberChannel(request.params.channel);
      const userId = request.params.user_id;
      await store.addChannelMember(channel, userId);
      // Gateways drop a cached "not a member" answer, so the user may subscribe at once.
      await bus?.publishControl({ kind: 'membership_added', channel, userId }).catch((err: unknown) => {
        logger.warn({ err, channel, user_id: userId }, 'could not tell gateways about an added membership');
      });
      return reply.code(204).send();
    },
  );

  app.delete(
    '/api/channels/:channel/members/:user_id',
    { config: { permission: MEMBERS_WRITE }, schema: { params: memberParams }, preValidation: refuseBody('a membership removal') },
    async (request: FastifyRequest<{ Params: { channel: string; user_id: string } }>, reply) => {
      const channel = exactChannel(request.params.channel, 'params.channel');
      const userId = request.params.user_id;
      await store.removeChannelMember(channel, userId);
      // Gateways end the user's live subscriptions that nothing else grants (decision 0013). The
      // removal itself is done: a lost message is caught by the gateways' periodic re-check.
      await bus?.publishControl({ kind: 'membership_removed', channel, userId }).catch((err: unknown) => {
        logger.warn({ err, channel, user_id: userId }, 'could not tell gateways about a removed membership');
      });
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/channels/:channel/members',
    { config: { permission: MEMBERS_READ }, schema: { params: channelParams } },
    async (request: FastifyRequest<{ Params: { channel: string } }>) => {
      const channel = exactChannel(request.params.channel, 'params.channel');
      return { channel, members: await store.listChannelMembers(channel) };
    },
  );

  app.get(
    '/api/presence/:channel',
    { config: { permission: PRESENCE }, schema: { params: channelParams } },
    async (request: FastifyRequest<{ Params: { channel: string } }>) => {
      const channel = exactChannel(request.params.channel, 'params.channel');
      // Who may see a channel may see who is on it; so may a principal that may list any
      // channel's members (services, admins: the server-side "is this user online?").
      const auth = request.auth!;
      if (!can(auth, MEMBERS_READ) && !(await access.canSubscribe(auth, channel))) throw createError('NOT_FOUND', `No channel ${channel}`);
      if (!presence) throw createError('BUS_UNAVAILABLE', 'Presence is not available in this process');
      // A namespace without presence keeps none, as the PRESENCE frame says.
      if (!namespaceOptions(config, channel).presence) return { channel, members: [] };
      const live = await presence.members(channel, clock.nowMs());
      return { channel, members: withOfflineMembers(live, await store.listChannelMembers(channel)) };
    },
  );
};
