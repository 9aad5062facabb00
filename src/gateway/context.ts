/**
 * What every part of the gateway shares: its dependencies and the node-wide state (registry,
 * write scheduler, open connections). Built once by createGateway.
 */
import type { TokenAuthenticator } from '../auth/types.js';
import type { Bus } from '../bus/types.js';
import type { TemConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceStore, SessionStore } from '../presence/types.js';
import type { ChannelAccess } from './access.js';
import type { IngestPort } from './ingest-port.js';
import type { FlushScheduler } from './outbound.js';
import type { Registry } from './registry.js';

/** The metrics the gateway writes (a subset of createMetrics()). */
export type GatewayMetrics = Pick<
  Metrics,
  'wsConnections' | 'wsSubscriptions' | 'wsMessagesIn' | 'wsMessagesOut' | 'wsDropped' | 'wsSlowConsumerCloses' | 'wsPending' | 'wsPendingLimitCloses'
>;

export interface GatewayDeps {
  config: TemConfig;
  logger: Logger;
  clock: Clock;
  metrics: GatewayMetrics;
  bus: Bus;
  presence: PresenceStore;
  sessions: SessionStore;
  auth: TokenAuthenticator;
  access: ChannelAccess;
  /** INGEST frames; without it they answer ERROR INTERNAL. */
  ingest?: IngestPort;
  nodeId: string;
}

/** Gateway tunables not in the config table (tests shorten them). */
export interface GatewayTuning {
  /** Typing auto-stop (contract: 10 s). */
  typingTimeoutMs: number;
  /** How often presence entries are refreshed. */
  presenceRefreshMs: number;
  /** How often expired presence entries are swept and their leaves announced. */
  presenceSweepMs: number;
  /** How often every connection's token is checked again (backstop for a missed revocation). */
  revalidateMs: number;
  /** How long a closing socket may take before it is destroyed. */
  closeGraceMs: number;
  /** Most subscriptions one connection may hold. */
  maxSubscriptions: number;
  /** Frames queued behind a slow operation before the socket stops being read. */
  maxPendingFrames: number;
}

export const DEFAULT_TUNING: GatewayTuning = {
  typingTimeoutMs: 10_000,
  presenceRefreshMs: 0, // 0: presenceTtlMs / 3
  presenceSweepMs: 0, // 0: presenceTtlMs / 20, between 100 ms and 5 s
  revalidateMs: 60_000,
  closeGraceMs: 5_000,
  maxSubscriptions: 512,
  maxPendingFrames: 64,
};

export interface GatewayContext extends GatewayDeps {
  tuning: GatewayTuning;
  registry: Registry;
  scheduler: FlushScheduler;
}
