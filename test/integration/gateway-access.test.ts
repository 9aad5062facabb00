/**
 * Who may subscribe (docs/decisions/0007): own user channels only, membership, JWT `channels`
 * claims (names and patterns), the `channels.subscribe.<namespace>` permission, and patterns only
 * with a grant covering the whole prefix. Driven with real JWTs over real sockets, plus the pure
 * rule for the corner cases.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimCovers, decideWithoutMembership } from '../../src/gateway/access.js';
import { authContext } from '../helpers/auth-context.js';
import { startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';

const SECRET = 'test-secret-for-gateway-access-0123456789';
let h: GatewayHarness;

async function jwt(sub: string, channels?: string[], expSeconds = 3600): Promise<string> {
  const claims: Record<string, unknown> = {};
  if (channels) claims.channels = channels;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds)
    .sign(new TextEncoder().encode(SECRET));
}

async function outcomes(token: string, channels: string[]): Promise<Record<string, string>> {
  const c = await WsTestClient.ready(h.wsUrl({ token }));
  const replies = await c.requestMany('SUBSCRIBE', { channels }, channels.length);
  await c.close();
  return Object.fromEntries(replies.map((r) => [r.payload.channel as string, r.type === 'ERROR' ? (r.payload.code as string) : r.type]));
}

beforeAll(async () => {
  h = await startGatewayHarness({ config: { jwtSecret: SECRET } });
  await h.api.store.addChannelMember('server:1:channel:1', 'ann');
});

afterAll(async () => {
  await h?.close();
});

describe('channel access over the wire', () => {
  it('a JWT user: own channels, claimed names and patterns, memberships; nothing else', async () => {
    const token = await jwt('ann', ['live:5:chat', 'server:2:*']);
    expect(
      await outcomes(token, [
        'user:ann:notifications',
        'user:bob',
        'user:*',
        'live:5:chat',
        'live:6:chat',
        'server:2:channel:9',
        'server:2:*',
        'server:2:channel:*',
        'server:*',
        'server:1:channel:1',
        'server:1:*',
      ]),
    ).toEqual({
      'user:ann:notifications': 'SUBSCRIBED',
      'user:bob': 'FORBIDDEN',
      'user:*': 'FORBIDDEN',
      'live:5:chat': 'SUBSCRIBED',
      'live:6:chat': 'FORBIDDEN',
      'server:2:channel:9': 'SUBSCRIBED',
      'server:2:*': 'SUBSCRIBED',
      'server:2:channel:*': 'SUBSCRIBED',
      'server:*': 'FORBIDDEN',
      'server:1:channel:1': 'SUBSCRIBED',
      'server:1:*': 'FORBIDDEN',
    });
  });

  it('a live connection closes 4001 within about a second of its JWT expiring', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: await jwt('ann', [], 2) }));
    // Well before the next heartbeat round (every 15 s here), which used to be when it was seen.
    const closed = await Promise.race([c.closed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still open 6 s later')), 6000))]);
    expect(closed.code).toBe(4001);
    expect(closed.reason).toMatch(/expired/);
  });

  it('an expired JWT is refused at the upgrade with 4001', async () => {
    const c = await WsTestClient.connect(h.wsUrl({ token: await jwt('ann', [], -10) }));
    expect((await c.closed).code).toBe(4001);
  });

  it('channels.subscribe.<namespace> allows the namespace and its patterns, not user channels', async () => {
    const p = await h.api.createPrincipal({ id: 'ops', extra_permissions: ['channels.subscribe.live'] });
    expect(await outcomes(p.key, ['live:1:chat', 'live:*', 'server:1:channel:1', 'user:ann'])).toEqual({
      'live:1:chat': 'SUBSCRIBED',
      'live:*': 'SUBSCRIBED',
      'server:1:channel:1': 'FORBIDDEN',
      'user:ann': 'FORBIDDEN',
    });
  });

  it('the admin grant covers every namespace, still not other users', async () => {
    expect(await outcomes(h.api.adminKey, ['server:*', 'live:1:chat', 'user:ann'])).toMatchObject({
      'server:*': 'SUBSCRIBED',
      'live:1:chat': 'SUBSCRIBED',
      'user:ann': 'FORBIDDEN',
    });
  });
});

describe('the rule', () => {
  it('claims cover names and whole prefixes only', () => {
    expect(claimCovers('a:1', 'a:1')).toBe(true);
    expect(claimCovers('a:1', 'a:2')).toBe(false);
    expect(claimCovers('a:*', 'a:1:2')).toBe(true);
    expect(claimCovers('a:1:*', 'a:*')).toBe(false);
    expect(claimCovers('a:*', 'a:1:*')).toBe(true);
    expect(claimCovers('a:1', 'a:*')).toBe(false);
  });

  it('leaves exact channels to membership, decides the rest', () => {
    expect(decideWithoutMembership(authContext(), 'user:u1')).toBe(true);
    expect(decideWithoutMembership(authContext(), 'user:u1:*')).toBe(true);
    expect(decideWithoutMembership(authContext({ permissions: ['*'] }), 'user:u2')).toBe(false);
    expect(decideWithoutMembership(authContext(), 'live:1')).toBeNull();
    expect(decideWithoutMembership(authContext(), 'live:*')).toBe(false);
    expect(decideWithoutMembership(authContext({ permissions: ['channels.*'] }), 'live:*')).toBe(true);
    expect(decideWithoutMembership(authContext({ permissions: ['channels.*'], revoked: ['channels.subscribe.live'] }), 'live:1')).toBeNull();
    expect(decideWithoutMembership(authContext(), 'not a channel')).toBe(false);
  });
});
