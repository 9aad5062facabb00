/** Which auth changes reach gateways as bus control messages (src/app/wiring.ts). */
import { describe, expect, it } from 'vitest';
import { forwardAuthChanges } from '../../src/app/wiring.js';
import type { Authenticator, AuthChange } from '../../src/auth/authenticator.js';
import { MemoryHub } from '../../src/bus/memory.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import type { ControlMessage } from '../../src/bus/types.js';
import { loadConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/observability/logger.js';

describe('forwardAuthChanges', () => {
  it('forwards revocations and role edits, and nothing for an empty change (a listener reconnect)', async () => {
    const config = loadConfig({ configFile: '/nonexistent.json' }, {});
    const hub = new MemoryHub({ namespaces: namespaceResolver(config) });
    const api = hub.node();
    const gateway = hub.node();
    const seen: ControlMessage[] = [];
    await gateway.onControl((m) => seen.push(m));
    let emit: (change: AuthChange) => void = () => undefined;
    const source = { onRevoked: (l: (c: AuthChange) => void) => ((emit = l), () => undefined) } as unknown as Authenticator;
    forwardAuthChanges(source, api, silentLogger());
    emit({});
    emit({ keyId: 'key_1', principalId: 'u_1' });
    emit({ roles: true });
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([
      { kind: 'revoke_key', keyId: 'key_1' },
      { kind: 'revoke_principal', principalId: 'u_1' },
      { kind: 'roles_changed' },
    ]);
    await api.close();
    await gateway.close();
  });
});
