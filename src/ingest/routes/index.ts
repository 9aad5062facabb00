/**
 * Every route plugin of the public API. Adding a group of routes is one line here (or, from a
 * composition root, one entry in `extraRoutes`). Each plugin receives RouteDeps as options.
 */
import type { ApiRoutePlugin } from '../types.js';
import { adminPrincipalRoutes } from './admin-principals.js';
import { adminRoleRoutes } from './admin-roles.js';
import { eventIngestRoutes } from './events-ingest.js';
import { eventReadRoutes } from './events-read.js';
import { eventRetryRoutes } from './events-retry.js';
import { healthRoutes } from './health.js';
import { metricsRoutes } from './metrics.js';
import { realtimeRoutes } from './realtime.js';

export const apiRoutes: ApiRoutePlugin[] = [
  healthRoutes,
  metricsRoutes,
  eventIngestRoutes,
  eventReadRoutes,
  eventRetryRoutes,
  adminPrincipalRoutes,
  adminRoleRoutes,
  realtimeRoutes,
];
