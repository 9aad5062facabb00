export { buildApiServer } from './server.js';
export { buildInternalServer } from './internal-server.js';
export { IngestService, type IngestResult, type IngestOptions, type IngestServiceDeps } from './service.js';
export { GroupCommitter } from './batcher.js';
export { RequestLimiter } from './rate-limit.js';
export type { ApiDeps, RouteDeps, ApiRoutePlugin } from './types.js';
export type { InternalDeps, InternalRoutePlugin } from './internal-types.js';
export { requestToken } from './auth-hook.js';
export { eventJson, eventDetailJson } from './serialize.js';
