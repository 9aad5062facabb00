/** Every route plugin of the internal listener; adding one is one line here. */
import type { InternalRoutePlugin } from '../internal-types.js';
import { internalHealthRoutes } from './health.js';
import { introspectRoutes } from './introspect.js';
import { realtimeInternalRoutes } from './realtime.js';

export const internalRoutes: InternalRoutePlugin[] = [internalHealthRoutes, introspectRoutes, realtimeInternalRoutes];
