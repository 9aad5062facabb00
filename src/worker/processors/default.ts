import type { Processor } from './types.js';

/**
 * Used for event types no configured processor claims: the event is accepted as processed and
 * `{ ok: true }` is recorded, so events flow end to end before any processor is written.
 */
export const defaultProcessor: Processor = {
  name: 'default',
  types: ['*'],
  process: async () => ({ ok: true }),
};
