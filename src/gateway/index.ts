/**
 * The real-time gateway: what composition roots need to run one (embedded or `tem gateway`).
 */
export { createGateway, type Gateway, type ConnectionFilter } from './gateway.js';
export { DEFAULT_TUNING, type GatewayDeps, type GatewayMetrics, type GatewayTuning } from './context.js';
export { storeChannelAccess, httpChannelAccess, MembershipAccess, decideWithoutMembership, type ChannelAccess, type MembershipCheck } from './access.js';
export { IntrospectionAuthenticator, contextFromIntrospection, type RevocationAware } from './introspect-client.js';
export { httpIngestPort, serviceIngestPort, INTERNAL_INGEST_PATH, type IngestPort, type IngestReply, type IngestServiceLike } from './ingest-port.js';
export { WS_PATHS } from './upgrade.js';
