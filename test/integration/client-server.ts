/**
 * The real embedded server (PGlite + memory bus, src/app/embedded.ts) for the client SDK's
 * integration tests, with small HTTP helpers and a TCP proxy that can cut the network.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startEmbedded, type EmbeddedServer } from '../../src/app/embedded.js';
import type { ConfigOverrides } from '../../src/app/runtime.js';
import type { WebSocketConstructor } from '../../src/client/index.js';

/** The `ws` package as the injected WebSocket, as a Node application would pass it. */
export const NodeWebSocket: WebSocketConstructor = WebSocket;

export interface TestServer {
  server: EmbeddedServer;
  port: number;
  dataDir: string;
  adminKey: string;
  wsUrl: string;
  api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: T }>;
  /** A user principal and one API key for it. */
  createUser(id: string): Promise<string>;
  createPrincipal(id: string): Promise<void>;
  newKey(id: string): Promise<{ key: string; key_id: string }>;
  addMember(channel: string, userId: string): Promise<void>;
  publish(channel: string, event: string, payload: unknown): Promise<{ offset: number; epoch: string }>;
  close(): Promise<void>;
  /** Removes the data directory (after close). */
  remove(): void;
}

export async function startServer(options: { dataDir?: string; port?: number; config?: ConfigOverrides } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tem-client-it-'));
  const server = await startEmbedded(
    {
      httpHost: '127.0.0.1',
      httpPort: options.port ?? 0,
      internalPort: 0,
      dataDir,
      logLevel: 'silent',
      configFile: join(dataDir, 'no-such-config.json'),
      wsConnectLimit: 0,
      ...options.config,
    },
    {},
  );
  const port = Number(new URL(server.url).port);
  const adminKey = readFileSync(server.adminKeyPath ?? join(dataDir, 'admin.key'), 'utf8').trim();

  async function api<T>(method: string, path: string, body?: unknown, key = adminKey): Promise<{ status: number; body: T }> {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  }

  async function newKey(id: string): Promise<{ key: string; key_id: string }> {
    const res = await api<{ key: string; key_id: string }>('POST', `/api/admin/principals/${id}/keys`, {});
    if (res.status !== 201) throw new Error(`key for ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async function createPrincipal(id: string): Promise<void> {
    const res = await api('POST', '/api/admin/principals', { id, kind: 'user', role: 'user' });
    if (res.status !== 201 && res.status !== 200) throw new Error(`principal ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  return {
    server,
    port,
    dataDir,
    adminKey,
    wsUrl: server.wsUrl,
    api,
    newKey,
    createPrincipal,
    async createUser(id) {
      await createPrincipal(id);
      return (await newKey(id)).key;
    },
    async addMember(channel, userId) {
      const res = await api('PUT', `/api/channels/${encodeURIComponent(channel)}/members/${userId}`);
      if (res.status >= 300) throw new Error(`member ${userId} of ${channel}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async publish(channel, event, payload) {
      const res = await api<{ offset: number; epoch: string }>('POST', '/api/publish', { channel, event, payload });
      if (res.status >= 300) throw new Error(`publish to ${channel}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    close: () => server.close(),
    remove: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** Polls until `check` returns true (or throws after `timeoutMs`). */
export async function waitUntil(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Polls an async check until it returns true (or throws after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A TCP proxy in front of the server: `cut()` drops every connection and refuses new ones (a
 * network outage as the client sees it: no close frame), `restore()` lets them through again.
 */
export class NetProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  port = 0;

  constructor(private readonly targetPort: number) {
    this.server = createServer((client) => {
      if (this.blocked) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this.port;
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  cut(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
