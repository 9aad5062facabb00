/** Browser pages of other origins: allowed only for the origins TEM_CORS_ORIGINS names. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi, type TestPrincipal } from '../helpers/api.js';

describe('CORS', () => {
  let open: TestApi;
  let closed: TestApi;
  let user: TestPrincipal;

  beforeAll(async () => {
    open = await createTestApi({ config: { corsOrigins: 'https://app.example, https://admin.example' } });
    closed = await createTestApi();
    user = await open.createPrincipal({ kind: 'user' });
  });
  afterAll(async () => {
    await open?.close();
    await closed?.close();
  });

  const preflight = (api: TestApi, origin: string) =>
    api.app.inject({ method: 'OPTIONS', url: '/api/events', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' } });

  it('answers a preflight from a listed origin, with the headers a client sends and reads', async () => {
    const res = await preflight(open, 'https://app.example');
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(String(res.headers['access-control-allow-methods'])).toMatch(/POST/);
    expect(String(res.headers['access-control-allow-headers'])).toMatch(/idempotency-key/);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    const post = await open.app.inject({ method: 'POST', url: '/api/events', headers: { origin: 'https://app.example', 'x-api-key': user.key }, payload: { type: 'ui.click', payload: {} } });
    expect(post.statusCode).toBe(202);
    expect(post.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(String(post.headers['access-control-expose-headers'])).toMatch(/location/);
  });

  it('gives other origins, and every origin when none is configured, no access', async () => {
    expect((await preflight(open, 'https://evil.example')).headers['access-control-allow-origin']).toBeUndefined();
    expect((await preflight(closed, 'https://app.example')).headers['access-control-allow-origin']).toBeUndefined();
  });
});
