/**
 * Revocation across API processes on one PostgreSQL database: once the process that revoked a
 * key (or disabled a principal) has answered, another process that had the key cached refuses
 * it on its very next request (contract §1), instead of a few milliseconds later.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/auth/authenticator.js';
import { generateApiKey } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/core/clock.js';
import { newId } from '../../src/core/ids.js';
import { createPostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';

describe.skipIf(!services.postgres)('revocation across API processes', () => {
  const config = loadConfig({ configFile: '/nonexistent/tem.config.json', authCacheMs: 60_000 }, {});
  let a: TestStore;
  let bStore: Store;
  let authA: Authenticator;
  let authB: Authenticator;

  beforeAll(async () => {
    a = await createTestStore('postgres');
    bStore = createPostgresStore(a.url!, { poolMax: 2 });
    authA = new Authenticator(a.store, config, systemClock);
    authB = new Authenticator(bStore, config, systemClock);
    await authA.start();
    await authB.start();
  });

  afterAll(async () => {
    await authA?.close();
    await authB?.close();
    await bStore?.close();
    await a?.cleanup();
  });

  async function cachedKeyOf(principalId: string): Promise<{ key: string; keyId: string }> {
    await a.store.createPrincipal({ id: principalId, kind: 'service', role: 'service' });
    const g = generateApiKey();
    const keyId = newId('key');
    await a.store.createApiKey({ id: keyId, principalId, hash: g.hash, prefix: g.prefix, expiresAt: null });
    // Process B has it cached (authCacheMs 60 s).
    expect((await authB.authenticate(g.key)).principalId).toBe(principalId);
    return { key: g.key, keyId };
  }

  it('a key revoked in process A is refused by process B on the next request', async () => {
    for (let i = 0; i < 10; i++) {
      const { key, keyId } = await cachedKeyOf(`svc_rev_${i}`);
      await a.store.revokeApiKey(keyId, new Date());
      await authA.changed({ keyId, principalId: `svc_rev_${i}` });
      await expect(authB.authenticate(key), `round ${i}`).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });

  it('a principal disabled in process A is refused by process B on the next request', async () => {
    for (let i = 0; i < 10; i++) {
      const { key } = await cachedKeyOf(`svc_off_${i}`);
      await a.store.updatePrincipal(`svc_off_${i}`, { disabled: true });
      await authA.changed({ principalId: `svc_off_${i}` });
      await expect(authB.authenticate(key), `round ${i}`).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });
});
