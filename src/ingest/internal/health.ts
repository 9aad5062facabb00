/** GET /healthz on the internal listener (liveness). */
import type { InternalRoutePlugin } from '../internal-types.js';

export const internalHealthRoutes: InternalRoutePlugin = async (app) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
};
