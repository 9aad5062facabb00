/**
 * Prometheus metrics of this process, on one registry. Components increment these directly;
 * gauges read from the database are collected at scrape time by the API (src/ingest).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { version } from '../core/version.js';

/** Which process this is: `tem_info{node, role, version} 1`, to join its other series on. */
export interface MetricsIdentity {
  node: string;
  role: string;
}

export function createMetrics(identity?: MetricsIdentity) {
  const registry = new Registry();
  // The standard process_* and nodejs_* names, as dashboards for Node services expect them.
  collectDefaultMetrics({ register: registry });
  if (identity) {
    const info = new Gauge({ name: 'tem_info', help: 'This process: its TEM_NODE_ID, role and version (always 1)', labelNames: ['node', 'role', 'version'] as const, registers: [registry] });
    info.set({ node: identity.node, role: identity.role, version }, 1);
  }
  const m = {
    registry,
    httpRequests: new Counter({ name: 'tem_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry] }),
    httpDuration: new Histogram({ name: 'tem_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    eventsByStatus: new Gauge({ name: 'tem_events', help: 'Events by status', labelNames: ['status'] as const, registers: [registry] }),
    queueDepth: new Gauge({ name: 'tem_queue_depth', help: 'Jobs ready to run', registers: [registry] }),
    oldestQueuedAge: new Gauge({ name: 'tem_queue_oldest_age_seconds', help: 'Age of the oldest ready job', registers: [registry] }),
    leasedJobs: new Gauge({ name: 'tem_jobs_leased', help: 'Jobs currently leased by workers', registers: [registry] }),
    // Registered only by the processes that read those figures (the API's /metrics route): a
    // worker or gateway showing 0 here would look like an outage.
    databaseUp: new Gauge({ name: 'tem_database_up', help: '1 when this scrape read the database figures (tem_events, tem_queue_*, tem_jobs_leased); 0 when the database did not answer, and those figures are then NaN or absent', registers: [] }),
    eventsIngested: new Counter({ name: 'tem_events_ingested_total', help: 'Events accepted', registers: [registry] }),
    jobsCompleted: new Counter({ name: 'tem_jobs_completed_total', help: 'Jobs finished by outcome', labelNames: ['outcome'] as const, registers: [registry] }),
    leaseExpiries: new Counter({ name: 'tem_worker_lease_expiries_total', help: 'Leases that ran out and were swept', registers: [registry] }),
    leaseLost: new Counter({ name: 'tem_worker_lease_lost_total', help: 'Completions refused because the lease was no longer held', registers: [registry] }),
    wsConnections: new Gauge({ name: 'tem_ws_connections', help: 'Open WebSocket connections', registers: [registry] }),
    wsSubscriptions: new Gauge({ name: 'tem_ws_subscriptions', help: 'Channel subscriptions on this node', registers: [registry] }),
    wsMessagesIn: new Counter({ name: 'tem_ws_messages_in_total', help: 'Frames received from clients', registers: [registry] }),
    wsMessagesOut: new Counter({ name: 'tem_ws_messages_out_total', help: 'Frames sent to clients', registers: [registry] }),
    wsDropped: new Counter({ name: 'tem_ws_dropped_total', help: 'Messages dropped (closed or slow connections)', registers: [registry] }),
    wsSlowConsumerCloses: new Counter({ name: 'tem_ws_slow_consumer_closes_total', help: 'Connections closed 1013 for a full send buffer', registers: [registry] }),
    wsPending: new Gauge({ name: 'tem_ws_pending_connections', help: 'Open WebSocket connections still waiting for HELLO', registers: [registry] }),
    wsPendingLimitCloses: new Counter({ name: 'tem_ws_pending_limit_closes_total', help: 'Connections closed 1013 for too many waiting for HELLO from one address', registers: [registry] }),
    relayLag: new Gauge({ name: 'tem_relay_lag_seconds', help: 'Age of the oldest outbox message at relay time', registers: [registry] }),
    relayPublished: new Counter({ name: 'tem_relay_published_total', help: 'Outbox messages published to the bus', registers: [registry] }),
    relayDropped: new Counter({ name: 'tem_relay_dropped_total', help: 'Outbox messages naming no publishable channel, logged and dropped', registers: [registry] }),
    relayHeldChannels: new Gauge({ name: 'tem_relay_held_channels', help: 'Channels whose notifications the relay holds back while their Redis Cluster node fails', registers: [registry] }),
    busPublishFailures: new Counter({ name: 'tem_bus_publish_failures_total', help: 'Bus publishes that failed', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
