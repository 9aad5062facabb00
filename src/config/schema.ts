/**
 * Every setting in one place: its env name, its default and how it is validated.
 * Resolution order: explicit override → environment → tem.config.json → default.
 * docs/configuration.md is the operator's copy of this table.
 */
export type SettingType = 'int' | 'string' | 'url' | 'origins' | 'enum' | 'bool';

export interface SettingSpec {
  env: string;
  type: SettingType;
  default: string | number | boolean | undefined;
  min?: number;
  max?: number;
  values?: readonly string[];
  /** A URL's allowed schemes (`postgres:`): another one fails start-up naming the setting. */
  schemes?: readonly string[];
  doc: string;
}

/**
 * Longest delay a Node.js timer takes (2^31 − 1 ms, about 24.8 days): a longer one fires after
 * 1 ms, so every setting that ends up in a timer is capped here rather than silently inverted.
 */
export const TIMER_MAX_MS = 2_147_483_647;

/** Longest retry backoff (30 days): beyond it an event is better failed and retried by hand. */
export const RETRY_DELAY_MAX_MS = 30 * 86_400_000;

/** Longest idempotency-key retention (10 years): larger values overflow the dates computed from them. */
export const RETENTION_MAX_MS = 3650 * 86_400_000;

export const SETTINGS = {
  databaseUrl: { env: 'DATABASE_URL', type: 'url', schemes: ['postgres:', 'postgresql:'], default: undefined, doc: 'PostgreSQL URL. Unset: embedded PGlite in dataDir.' },
  redisUrl: { env: 'REDIS_URL', type: 'url', schemes: ['redis:', 'rediss:'], default: undefined, doc: 'Redis URL. Unset: in-memory bus (single process).' },
  redisCluster: { env: 'TEM_REDIS_CLUSTER', type: 'bool', default: false, doc: 'REDIS_URL names one node of a Redis Cluster (Redis ≥ 6): the other nodes are found from it, each channel\'s history, presence and sessions live on the node owning their slot, and pub/sub goes through the cluster (docs/operations.md).' },
  redisPrefix: { env: 'TEM_REDIS_PREFIX', type: 'string', default: 'tem:', doc: 'Prefix of every Redis key and pub/sub channel (several deployments on one Redis).' },
  httpHost: { env: 'TEM_HTTP_HOST', type: 'string', default: '0.0.0.0', doc: 'Public listener host.' },
  httpPort: { env: 'TEM_HTTP_PORT', type: 'int', default: 8080, min: 0, max: 65535, doc: 'Public listener port (0 picks a free port).' },
  internalHost: { env: 'TEM_INTERNAL_HOST', type: 'string', default: '127.0.0.1', doc: 'Internal listener host (introspection).' },
  internalPort: { env: 'TEM_INTERNAL_PORT', type: 'int', default: 8081, min: 0, max: 65535, doc: 'Internal listener port (0 picks a free port; so does leaving it unset while TEM_HTTP_PORT is 0, so several servers can run side by side).' },
  metricsPort: { env: 'TEM_METRICS_PORT', type: 'int', default: undefined, min: 0, max: 65535, doc: '`tem worker` only: port of a listener serving /metrics and /healthz on TEM_HTTP_HOST (0 picks a free port), since a worker has no other listener. The API, gateways and the embedded server serve /metrics on their public port. Unset: none.' },
  apiInternalUrl: { env: 'TEM_API_INTERNAL_URL', type: 'url', schemes: ['http:', 'https:'], default: 'http://127.0.0.1:8081', doc: "Where gateways reach the API's internal listener." },
  corsOrigins: { env: 'TEM_CORS_ORIGINS', type: 'origins', default: undefined, doc: 'Comma-separated origins (https://app.example.com) whose browser pages may call the HTTP API, e.g. with end-user JWTs; `*` for any. Unset: none, only same-origin pages such as the console. WebSocket connections need none of it.' },
  publicWsUrl: { env: 'TEM_PUBLIC_WS_URL', type: 'url', schemes: ['ws:', 'wss:', 'http:', 'https:'], default: undefined, doc: "WebSocket URL the console uses when gateways are not on the API's origin (distributed)." },
  dataDir: { env: 'TEM_DATA_DIR', type: 'string', default: './.tem', doc: 'Embedded database directory and admin.key location.' },
  minFreeDiskMb: { env: 'TEM_MIN_FREE_DISK_MB', type: 'int', default: 128, min: 0, max: 1_048_576, doc: 'Embedded only: while less than this many MiB are free under TEM_DATA_DIR, the embedded database takes no statements (requests get 503, /readyz says why) until space is freed, instead of hanging on a full disk. 0: no check.' },
  logLevel: { env: 'TEM_LOG_LEVEL', type: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], doc: 'Log level.' },
  adminKey: { env: 'TEM_ADMIN_KEY', type: 'string', default: undefined, doc: 'When set, this key is the admin key (bootstraps distributed deployments).' },
  nodeId: { env: 'TEM_NODE_ID', type: 'string', default: undefined, doc: 'Name of this process in logs, metrics and leases (default host-pid).' },
  configFile: { env: 'TEM_CONFIG', type: 'string', default: './tem.config.json', doc: 'Optional JSON config file.' },

  // ingest
  maxPayloadBytes: { env: 'TEM_MAX_PAYLOAD_BYTES', type: 'int', default: 262144, min: 1024, max: 16777216, doc: 'Largest event payload (serialized JSON), and largest publication payload (`POST /api/publish`, `PUBLISH` frames).' },
  maxBodyBytes: { env: 'TEM_MAX_BODY_BYTES', type: 'int', default: 1048576, min: 1024, max: 67108864, doc: 'Largest HTTP request body, except /api/events/batch.' },
  maxBatchBodyBytes: { env: 'TEM_MAX_BATCH_BODY_BYTES', type: 'int', default: 16777216, min: 1024, max: 268435456, doc: 'Largest /api/events/batch body.' },
  requestTimeoutMs: { env: 'TEM_REQUEST_TIMEOUT_MS', type: 'int', default: 60_000, min: 1000, max: TIMER_MAX_MS, doc: 'Longest time a client may take to send a whole HTTP request (headers and body); past it the answer is 408 and the connection is closed, so a client trickling a body cannot hold a connection open for good.' },
  rateLimitPoints: { env: 'TEM_RATE_LIMIT_POINTS', type: 'int', default: 2000, min: 0, doc: 'Requests per key per window (0 disables).' },
  rateLimitWindowS: { env: 'TEM_RATE_LIMIT_WINDOW_S', type: 'int', default: 1, min: 1, max: 3600, doc: 'Rate-limit window in seconds.' },
  ingestBatchMax: { env: 'TEM_INGEST_BATCH_MAX', type: 'int', default: 256, min: 1, max: 5000, doc: 'Most events combined into one ingest commit.' },
  ingestCommitsInFlight: { env: 'TEM_INGEST_COMMITS_IN_FLIGHT', type: 'int', default: 2, min: 1, max: 16, doc: 'Ingest commits running at once per API process; requests arriving meanwhile join the next one. Two overlap one batch\'s commit with the next; one makes the biggest batches (docs/decisions/0012).' },
  idempotencyRetentionMs: { env: 'TEM_IDEMPOTENCY_RETENTION_MS', type: 'int', default: 86_400_000, min: 86_400_000, max: RETENTION_MAX_MS, doc: 'How long idempotency keys are kept (at least 24 h, at most 10 years).' },
  authCacheMs: { env: 'TEM_AUTH_CACHE_MS', type: 'int', default: 30_000, min: 0, max: 60_000, doc: 'API key lookup cache; dropped at once on revocation.' },

  // worker
  workerConcurrency: { env: 'TEM_WORKER_CONCURRENCY', type: 'int', default: 32, min: 1, max: 1024, doc: 'Events processed at once per worker process.' },
  workerBatchSize: { env: 'TEM_WORKER_BATCH_SIZE', type: 'int', default: 64, min: 1, max: 1000, doc: 'Jobs claimed per claim query.' },
  leaseMs: { env: 'TEM_LEASE_MS', type: 'int', default: 5000, min: 100, max: TIMER_MAX_MS, doc: 'Lease length; renewed while a job runs.' },
  pollIntervalMs: { env: 'TEM_POLL_INTERVAL_MS', type: 'int', default: 2000, min: 10, max: TIMER_MAX_MS, doc: 'Backstop polling when no NOTIFY arrives.' },
  sweepIntervalMs: { env: 'TEM_SWEEP_INTERVAL_MS', type: 'int', default: 1000, min: 10, max: TIMER_MAX_MS, doc: 'How often maintenance sweeps expired leases.' },
  queueVacuumIntervalMs: { env: 'TEM_QUEUE_VACUUM_INTERVAL_MS', type: 'int', default: 10_000, min: 0, max: TIMER_MAX_MS, doc: 'How often maintenance vacuums and analyzes the queue tables (jobs, outbox, outbox_held): at most once per 1000 ms (smaller values are raised to 1000); 0 leaves them to autovacuum alone.' },
  retryMaxAttempts: { env: 'TEM_RETRY_MAX_ATTEMPTS', type: 'int', default: 5, min: 1, max: 1000, doc: 'Attempts before an event is failed (per type in the config file).' },
  retryBaseMs: { env: 'TEM_RETRY_BASE_MS', type: 'int', default: 1000, min: 0, max: RETRY_DELAY_MAX_MS, doc: 'Backoff base: attempt n waits random(0, min(max, base·2^(n-1))).' },
  retryMaxMs: { env: 'TEM_RETRY_MAX_MS', type: 'int', default: 300_000, min: 0, max: RETRY_DELAY_MAX_MS, doc: 'Backoff cap (at most 30 days).' },
  processors: { env: 'TEM_PROCESSORS', type: 'string', default: undefined, doc: 'Comma-separated module paths exporting processors.' },
  processorTimeoutMs: { env: 'TEM_PROCESSOR_TIMEOUT_MS', type: 'int', default: 300_000, min: 0, max: TIMER_MAX_MS, doc: 'Longest one processor run may take before it counts as a failed attempt (0: no limit).' },
  shutdownTimeoutMs: { env: 'TEM_SHUTDOWN_TIMEOUT_MS', type: 'int', default: 10_000, min: 0, max: TIMER_MAX_MS, doc: 'How long in-flight work may finish on SIGTERM before it is released.' },

  // auth
  jwtSecret: { env: 'TEM_JWT_SECRET', type: 'string', default: undefined, doc: 'HS256 secret for end-user JWTs, at least 32 bytes. Give gateways the same one: they then verify JWTs themselves instead of asking the API for each.' },
  jwtPublicKey: { env: 'TEM_JWT_PUBLIC_KEY', type: 'string', default: undefined, doc: 'RS256 public key (PEM) for end-user JWTs. Give gateways the same one: they then verify JWTs themselves instead of asking the API for each.' },
  jwtIssuer: { env: 'TEM_JWT_ISSUER', type: 'string', default: undefined, doc: 'Required `iss` of end-user JWTs, if set.' },
  jwtAudience: { env: 'TEM_JWT_AUDIENCE', type: 'string', default: undefined, doc: 'Required `aud` of end-user JWTs, if set.' },
  introspectCacheMs: { env: 'TEM_INTROSPECT_CACHE_MS', type: 'int', default: 30_000, min: 0, max: 60_000, doc: 'Gateway cache of introspection answers (revocations and role edits drop it at once).' },

  // realtime
  heartbeatIntervalMs: { env: 'TEM_HEARTBEAT_INTERVAL_MS', type: 'int', default: 30_000, min: 100, max: TIMER_MAX_MS, doc: 'Client heartbeat interval; silence for twice this closes 4008.' },
  presenceTtlMs: { env: 'TEM_PRESENCE_TTL_MS', type: 'int', default: 60_000, min: 100, max: TIMER_MAX_MS, doc: 'Presence lifetime after the last heartbeat.' },
  sessionTtlMs: { env: 'TEM_SESSION_TTL_MS', type: 'int', default: 300_000, min: 1000, max: TIMER_MAX_MS, doc: 'How long a disconnected session can be resumed.' },
  wsMaxFrameBytes: { env: 'TEM_WS_MAX_FRAME_BYTES', type: 'int', default: 65536, min: 256, doc: 'Largest client frame; larger closes 1009.' },
  wsSendBufferBytes: { env: 'TEM_WS_SEND_BUFFER_BYTES', type: 'int', default: 4_194_304, min: 1024, doc: 'Per-connection send buffer; past it the client is closed 1013.' },
  wsConnectLimit: { env: 'TEM_WS_CONNECT_LIMIT', type: 'int', default: 5, min: 0, doc: 'Connection attempts per key per window (0 disables).' },
  wsConnectWindowMs: { env: 'TEM_WS_CONNECT_WINDOW_MS', type: 'int', default: 10_000, min: 1000, max: TIMER_MAX_MS, doc: 'Connection-attempt window, in whole seconds (rounded).' },
  wsMessageRate: { env: 'TEM_WS_MESSAGE_RATE', type: 'int', default: 1000, min: 0, doc: 'Client frames per second per connection; past it ERROR RATE_LIMITED, past 10× it (or 5 s in a row over it) close 1008. 0 disables.' },
  wsHelloTimeoutMs: { env: 'TEM_WS_HELLO_TIMEOUT_MS', type: 'int', default: 10_000, min: 100, max: TIMER_MAX_MS, doc: 'Time to send HELLO when not authenticated at upgrade.' },
  wsPendingPerIp: { env: 'TEM_WS_PENDING_PER_IP', type: 'int', default: 256, min: 0, doc: 'Connections still waiting for HELLO per remote address (the TCP peer, not X-Forwarded-For); past it a new one is closed 1013 (0 disables).' },
  historySize: { env: 'TEM_HISTORY_SIZE', type: 'int', default: 100, min: 0, doc: 'Default per-channel history length.' },
  historyTtlMs: { env: 'TEM_HISTORY_TTL_MS', type: 'int', default: 300_000, min: 0, doc: 'Default per-channel history lifetime.' },
  positionTtlMs: { env: 'TEM_POSITION_TTL_MS', type: 'int', default: 86_400_000, min: 60_000, doc: "How long a channel's position (epoch and offset, about 250 bytes in Redis) outlives its last publication, never less than its history lifetime; after it the next publication starts a new epoch, and a client resuming from the old one resyncs once." },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

/** Per-namespace channel options (config file `namespaces`). */
export interface NamespaceOptions {
  historySize: number;
  historyTtlMs: number;
  presence: boolean;
  joinLeave: boolean;
  clientPublish: boolean;
}

/** Per-event-type retry policy (config file `retry`, keyed by type or `prefix.*`). */
export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}
