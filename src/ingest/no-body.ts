/**
 * The preValidation hook of a route that takes no body: none, or `{}` (what many clients send
 * by default), is accepted; a field is refused naming it, not silently ignored, as a route's
 * schema refuses an unknown field. `what` names the operation in the message ("a retry").
 */
import { createError } from '../core/errors.js';

export function refuseBody(what: string): (request: { body: unknown }) => Promise<void> {
  return async (request) => {
    const body = request.body;
    if (body === undefined || body === null) return;
    if (typeof body !== 'object' || Array.isArray(body)) throw createError('VALIDATION_FAILED', 'body must be empty or {}', { field: 'body' });
    const [field] = Object.keys(body);
    if (field !== undefined) throw createError('VALIDATION_FAILED', `body.${field} is not allowed: ${what} takes no fields`, { field: `body.${field}` });
  };
}
