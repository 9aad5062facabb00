/**
 * Maintenance tasks, claimed like jobs so several maintenance processes share them:
 * ensure(names, now) creates missing task rows due at `now`; claim(workerId, now, lockMs) →
 * one due, unlocked task locked until now + lockMs (or null); finish(name, nextRunAt, error, now)
 * unlocks it and schedules its next run.
 */
import type { Db } from '../db.js';
import type { MaintenanceTaskClaim } from '../types.js';

export async function ensureMaintenanceTasks(db: Db, names: string[], now: Date): Promise<void> {
  if (names.length === 0) return;
  await db.query(
    `INSERT INTO maintenance_tasks (name, run_at)
     SELECT value, $2 FROM jsonb_array_elements_text($1::jsonb)
     ON CONFLICT (name) DO NOTHING`,
    [JSON.stringify(names), now],
  );
}

export async function claimMaintenanceTask(
  db: Db,
  workerId: string,
  now: Date,
  lockMs: number,
): Promise<MaintenanceTaskClaim | null> {
  const [row] = await db.query<{ name: string }>(
    `UPDATE maintenance_tasks SET locked_by = $1, locked_until = $3
     WHERE name = (
       SELECT name FROM maintenance_tasks
       WHERE run_at <= $2 AND (locked_until IS NULL OR locked_until <= $2)
       ORDER BY run_at, name LIMIT 1
       FOR UPDATE SKIP LOCKED
     )
     RETURNING name`,
    [workerId, now, new Date(now.getTime() + lockMs)],
  );
  return row ? { name: row.name } : null;
}

export async function finishMaintenanceTask(
  db: Db,
  name: string,
  nextRunAt: Date,
  error: string | null,
  now: Date,
): Promise<void> {
  await db.query(
    `UPDATE maintenance_tasks SET run_at = $2, locked_by = NULL, locked_until = NULL, last_run_at = $4, last_error = $3
     WHERE name = $1`,
    [name, nextRunAt, error, now],
  );
}
