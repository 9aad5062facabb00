/**
 * The shape of one event as a producer sends it (contract §2), shared by POST /api/events,
 * each item of /api/events/batch and the gateway's INGEST frame.
 */
import { PRINCIPAL_ID_RE } from '../core/ids.js';
import { createAjv, describedPattern } from './ajv.js';

export const EVENT_TYPE_PATTERN = describedPattern(
  '^[a-z0-9][a-z0-9_.-]{0,127}$',
  'an event type: 1–128 of a-z, 0-9, "_", "." and "-", starting with a letter or digit (payment.success)',
);
export const PRINCIPAL_ID_PATTERN = describedPattern(PRINCIPAL_ID_RE.source, 'a principal id: 1–128 of A-Z, a-z, 0-9, "_", ".", "@", "=" and "-"');
export const IDEMPOTENCY_KEY_PATTERN = describedPattern('^[\\x21-\\x7e]{1,255}$', '1–255 printable ASCII characters without spaces');

export interface EventInput {
  type: string;
  payload: Record<string, unknown>;
  channel?: string;
  user_id?: string;
  occurred_at?: string;
  idempotency_key?: string;
}

export const eventInputSchema = {
  type: 'object',
  required: ['type', 'payload'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', pattern: EVENT_TYPE_PATTERN },
    payload: { type: 'object' },
    channel: { type: 'string', minLength: 1, maxLength: 255 },
    user_id: { type: 'string', pattern: PRINCIPAL_ID_PATTERN },
    occurred_at: { type: 'string', format: 'date-time' },
    idempotency_key: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN },
  },
} as const;

export const validateEventInput = createAjv().compile<EventInput>(eventInputSchema);
