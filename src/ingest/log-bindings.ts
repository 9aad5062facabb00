/**
 * Adds fields to a request's log lines. Fastify gives every request its own child logger, so
 * extending that logger's bindings in place is safe and much cheaper on the hot path than
 * creating another child per request.
 */
import type { FastifyRequest } from 'fastify';

type Bindable = { setBindings?: (bindings: Record<string, unknown>) => void };

export function bindLog(request: FastifyRequest, bindings: Record<string, unknown>): void {
  const log = request.log as unknown as Bindable;
  if (typeof log.setBindings === 'function') log.setBindings(bindings);
  else request.log = request.log.child(bindings);
}
