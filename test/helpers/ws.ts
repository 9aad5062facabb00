/**
 * WebSocket test client and gateway harness.
 *
 *   const h = await startGatewayHarness();                 // API + gateway on PGlite + memory bus
 *   const alice = await h.api.createPrincipal({ id: 'alice' });
 *   const c = await WsTestClient.connect(h.wsUrl({ token: alice.key }));
 *   await c.waitFor((f) => f.type === 'HELLO_ACK');
 *   const sub = await c.request('SUBSCRIBE', { channels: ['live:1:chat'] });
 *   await h.close();
 *
 * Every client opened through `WsTestClient.connect` is tracked and closed by `closeAllClients()`
 * (the harness calls it), so a test that forgets one does not leak a socket.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import type { TokenAuthenticator } from '../../src/auth/types.js';
import { MemoryHub } from '../../src/bus/memory.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import type { Bus } from '../../src/bus/types.js';
import { loadConfig, type TemConfig } from '../../src/config/index.js';
import type { Clock } from '../../src/core/clock.js';
import { createGateway, storeChannelAccess, type ChannelAccess, type Gateway, type GatewayTuning, type IngestPort } from '../../src/gateway/index.js';
import { serviceIngestPort } from '../../src/gateway/ingest-port.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { MemoryPresenceStore, MemorySessionStore } from '../../src/presence/memory.js';
import type { PresenceStore, SessionStore } from '../../src/presence/types.js';
import type { Store } from '../../src/store/types.js';
import type { StoreKind } from './db.js';
import { createTestApi, type TestApi, type TestApiOptions } from './api.js';

export interface Frame {
  type: string;
  ref?: string | number;
  payload: Record<string, unknown> & { channel?: string; event?: string; code?: string };
}

export type FramePredicate = (f: Frame) => boolean;

const NOTICE_RE = /^(typing$|presence\.)/;

/** An EVENT that is part of the channel's stream (optionally on `channel`). */
export function isPublication(f: Frame, channel?: string): boolean {
  return f.type === 'EVENT' && !NOTICE_RE.test(String(f.payload.event)) && (channel === undefined || f.payload.channel === channel);
}

/** A typing or presence notice (optionally on `channel`). */
export function isNotice(f: Frame, channel?: string): boolean {
  return f.type === 'EVENT' && NOTICE_RE.test(String(f.payload.event)) && (channel === undefined || f.payload.channel === channel);
}

const open = new Set<WsTestClient>();

export class WsTestClient {
  readonly frames: Frame[] = [];
  /** Resolves with the close code and reason once the socket is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { pred: FramePredicate; from: number; resolve: (f: Frame) => void }[] = [];
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    open.add(this);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        open.delete(this);
        resolve({ code, reason: reason.toString() });
      });
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      const index = this.frames.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (index >= w.from && w.pred(frame)) {
          w.resolve(frame);
          return false;
        }
        return true;
      });
    });
    ws.on('error', () => undefined);
  }

  /** Opens a socket; resolves once the handshake is done (frames may follow at once). */
  static connect(url: string, options: WebSocket.ClientOptions = {}): Promise<WsTestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
      const client = new WsTestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Connects with a token in the query and waits for HELLO_ACK. */
  static async ready(url: string, options?: WebSocket.ClientOptions): Promise<WsTestClient> {
    const c = await WsTestClient.connect(url, options);
    await c.waitFor((f) => f.type === 'HELLO_ACK');
    return c;
  }

  send(type: string, payload?: unknown, id?: string | number): void {
    const frame: Record<string, unknown> = { type };
    if (id !== undefined) frame.id = id;
    if (payload !== undefined) frame.payload = payload;
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Sends a frame with a fresh id and waits for the first reply carrying it as `ref`. */
  async request(type: string, payload?: unknown, timeoutMs = 5000): Promise<Frame> {
    const id = `r${this.nextId++}`;
    const reply = this.next((f) => f.ref === id, timeoutMs);
    this.send(type, payload, id);
    return reply;
  }

  /** Every reply to one request id, once `count` of them arrived. */
  /**
   * SUBSCRIBE until it is SUBSCRIBED, or `ms` have passed (false): for a grant that reaches the
   * node asynchronously.
   */
  async subscribesWithin(channel: string, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if ((await this.request('SUBSCRIBE', { channels: [channel] })).type === 'SUBSCRIBED') return true;
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async requestMany(type: string, payload: unknown, count: number, timeoutMs = 5000): Promise<Frame[]> {
    const id = `r${this.nextId++}`;
    const from = this.frames.length;
    this.send(type, payload, id);
    await this.waitCount((f) => f.ref === id, count, timeoutMs, from);
    return this.frames.slice(from).filter((f) => f.ref === id);
  }

  /** The first frame (already received or coming) matching `pred`. */
  waitFor(pred: FramePredicate, timeoutMs = 5000, from = 0): Promise<Frame> {
    const found = this.frames.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      const done = (f: Frame) => {
        clearTimeout(timer);
        resolve(f);
      };
      this.waiters.push({ pred, from, resolve: done });
    });
  }

  /** The first frame matching `pred` that arrives after this call. */
  next(pred: FramePredicate, timeoutMs = 5000): Promise<Frame> {
    return this.waitFor(pred, timeoutMs, this.frames.length);
  }

  /** Waits until `count` frames match; returns them. */
  async waitCount(pred: FramePredicate, count: number, timeoutMs = 5000, from = 0): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.frames.slice(from).filter(pred);
      if (got.length >= count) return got;
      if (Date.now() > deadline) throw new Error(`expected ${count} frames, got ${got.length}; last: ${JSON.stringify(this.frames.slice(-3))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Frames matching `pred` received so far. */
  collect(pred: FramePredicate): Frame[] {
    return this.frames.filter(pred);
  }

  /** Publications (EVENT frames, not typing/presence notices) on `channel`, optionally of one event name. */
  events(channel: string, event?: string): Frame[] {
    return this.frames.filter((f) => isPublication(f, channel) && (event === undefined || f.payload.event === event));
  }

  /** Typing and presence notices on `channel`. */
  notices(channel: string, event?: string): Frame[] {
    return this.frames.filter((f) => isNotice(f, channel) && (event === undefined || f.payload.event === event));
  }

  async close(code = 1000): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState !== WebSocket.CLOSING) this.ws.close(code);
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(timer);
  }
}

export async function closeAllClients(): Promise<void> {
  await Promise.all([...open].map((c) => c.close()));
}

export function wsUrlFor(httpUrl: string, query: { token?: string; path?: string; raw?: string } = {}): string {
  const base = httpUrl.replace(/^http/, 'ws') + (query.path ?? '/ws');
  if (query.raw !== undefined) return `${base}?${query.raw}`;
  return query.token === undefined ? base : `${base}?token=${encodeURIComponent(query.token)}`;
}

// ── gateway nodes ─────────────────────────────────────────────────────────────

export interface NodeOptions {
  config: TemConfig;
  bus: Bus;
  presence: PresenceStore;
  sessions: SessionStore;
  auth: TokenAuthenticator;
  access: ChannelAccess;
  ingest?: IngestPort;
  clock: Clock;
  nodeId?: string;
  logger?: Logger;
  metrics?: Metrics;
  tuning?: Partial<GatewayTuning>;
  /** Attach to this server instead of starting one (it must be listening). */
  server?: Server;
}

export interface GatewayNode {
  gateway: Gateway;
  url: string;
  metrics: Metrics;
  wsUrl(query?: { token?: string; path?: string; raw?: string }): string;
  close(): Promise<void>;
}

let nodes = 0;

/** A gateway on its own HTTP server (or on `server`), listening on 127.0.0.1. */
export async function startGatewayNode(o: NodeOptions): Promise<GatewayNode> {
  const metrics = o.metrics ?? createMetrics();
  const gateway = createGateway(
    {
      config: o.config,
      logger: o.logger ?? silentLogger(),
      clock: o.clock,
      metrics,
      bus: o.bus,
      presence: o.presence,
      sessions: o.sessions,
      auth: o.auth,
      access: o.access,
      ingest: o.ingest,
      nodeId: o.nodeId ?? `test-node-${++nodes}`,
    },
    o.tuning,
  );
  const server = o.server ?? createServer((_req, res) => res.writeHead(404).end());
  gateway.attach(server);
  if (!o.server) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    gateway,
    url,
    metrics,
    wsUrl: (query) => wsUrlFor(url, query),
    async close() {
      await gateway.close();
      if (!o.server) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface HarnessOptions {
  kind?: StoreKind;
  /** Use this store (not closed by the harness) instead of a new one of `kind`. */
  store?: Store;
  config?: TestApiOptions['config'];
  clock?: Clock;
  tuning?: Partial<GatewayTuning>;
  /** The hub nodes share (default: a new one). */
  hub?: MemoryHub;
  /** A bus for node 0 (default: a node on the hub). */
  bus?: Bus;
  presence?: PresenceStore;
  sessions?: SessionStore;
  logger?: Logger;
}

export interface GatewayHarness {
  api: TestApi;
  hub: MemoryHub;
  bus: Bus;
  presence: PresenceStore;
  sessions: SessionStore;
  node: GatewayNode;
  /** ws URL of node 0. */
  wsUrl(query?: { token?: string; path?: string; raw?: string }): string;
  /** Another gateway node on the same store, hub (or given bus), presence and sessions. */
  addNode(options?: { bus?: Bus; tuning?: Partial<GatewayTuning>; config?: TestApiOptions['config'] }): Promise<GatewayNode>;
  close(): Promise<void>;
}

/** The API (listening) with a gateway on the same port: the embedded process, minus the worker. */
export async function startGatewayHarness(options: HarnessOptions = {}): Promise<GatewayHarness> {
  const hub = options.hub ?? new MemoryHub();
  const configOverrides = { wsConnectLimit: 0, ...options.config };
  const namespaces = namespaceResolver(loadConfig({ configFile: '/nonexistent/tem.config.json', ...configOverrides }, {}));
  const bus = options.bus ?? hub.node({ namespaces, clock: options.clock });
  const api = await createTestApi({ kind: options.kind ?? 'pglite', store: options.store, config: configOverrides, clock: options.clock, bus, listen: true });
  const presence = options.presence ?? new MemoryPresenceStore();
  const sessions = options.sessions ?? new MemorySessionStore();
  const extra: GatewayNode[] = [];
  const common = {
    config: api.config,
    presence,
    sessions,
    auth: api.authenticator,
    access: storeChannelAccess(api.store),
    ingest: serviceIngestPort(api.ingest),
    clock: api.clock,
    logger: options.logger,
  };
  const node = await startGatewayNode({ ...common, bus, server: api.app.server, tuning: options.tuning });
  const ownBuses: Bus[] = options.bus ? [] : [bus];
  return {
    api,
    hub,
    bus,
    presence,
    sessions,
    node,
    wsUrl: (query) => node.wsUrl(query),
    async addNode(o = {}) {
      const b = o.bus ?? hub.node({ namespaces, clock: api.clock });
      if (!o.bus) ownBuses.push(b);
      const config = o.config ? loadConfig({ configFile: '/nonexistent/tem.config.json', ...configOverrides, ...o.config }, {}) : api.config;
      const n = await startGatewayNode({ ...common, config, bus: b, tuning: o.tuning ?? options.tuning });
      extra.push(n);
      return n;
    },
    async close() {
      await closeAllClients();
      for (const n of extra) await n.close();
      await node.close();
      await api.close();
      for (const b of ownBuses) await b.close();
      if (!options.presence) await presence.close();
      if (!options.sessions) await sessions.close();
    },
  };
}
