/**
 * complete(job, {processor, result}, now) → boolean.
 * Fenced: acts only while the job still carries this lease token and the lease has not run out
 * at `now`; otherwise returns false and changes nothing (a zombie worker cannot commit).
 * Deletes the job, records the effect once per (event, processor), moves the event to
 * `processed` with history and notification, and queues the delivery to the event's channel.
 * It is completeMany of one item, so both write exactly the same rows.
 */
import type { Db } from '../db.js';
import type { CompleteInput, JobRef } from '../types.js';
import { completeMany } from './complete-many.js';

export async function complete(db: Db, job: JobRef, input: CompleteInput, now: Date): Promise<boolean> {
  const [done] = await completeMany(db, [{ job, input }], now);
  return done ?? false;
}
