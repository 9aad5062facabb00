/**
 * Who sees which events (contract §1): a user the events it owns or produced, a service the
 * events it produced, an admin (`*`) all. Others' events answer 404, as if they did not exist.
 */
import type { AuthContext } from '../auth/types.js';
import { seesAllEvents } from '../auth/policy.js';
import type { TemEvent } from '../core/types.js';
import type { EventFilter } from '../store/types.js';

export function visibilityFilter(ctx: AuthContext): Pick<EventFilter, 'visibleTo' | 'producerId'> {
  if (seesAllEvents(ctx)) return {};
  return ctx.kind === 'user' ? { visibleTo: ctx.principalId } : { producerId: ctx.principalId };
}

export function canSeeEvent(ctx: AuthContext, event: Pick<TemEvent, 'userId' | 'producerId'>): boolean {
  if (seesAllEvents(ctx)) return true;
  if (event.producerId === ctx.principalId) return true;
  return ctx.kind === 'user' && event.userId === ctx.userId;
}
