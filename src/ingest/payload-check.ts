/** HTTP-side checks of values the database must be able to hold. */
import { createError } from '../core/errors.js';

/**
 * A date-time the database can hold: ISO years 0000 and earlier (after the offset is applied)
 * are out of PostgreSQL's range.
 */
export function parseDateTime(value: string, field: string): Date {
  const date = new Date(value);
  // In UTC, as stored: 9999-12-31T23:59:59-12:00 is in year 10000, which PostgreSQL refuses.
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1 || date.getUTCFullYear() > 9999) {
    throw createError('VALIDATION_FAILED', `${field} is not a valid date-time (RFC 3339) in years 1 to 9999 UTC`, { field });
  }
  return date;
}
