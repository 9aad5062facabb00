/**
 * Channel membership: add (→ true when newly added), remove (→ true when it was there),
 * isMember (→ boolean), list (→ user ids in order).
 */
import type { Db } from '../db.js';

export async function addChannelMember(db: Db, channel: string, userId: string): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO channel_members (channel, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1 AS ok`,
    [channel, userId],
  );
  return rows.length > 0;
}

export async function removeChannelMember(db: Db, channel: string, userId: string): Promise<boolean> {
  const rows = await db.query(`DELETE FROM channel_members WHERE channel = $1 AND user_id = $2 RETURNING 1 AS ok`, [
    channel,
    userId,
  ]);
  return rows.length > 0;
}

export async function isChannelMember(db: Db, channel: string, userId: string): Promise<boolean> {
  const rows = await db.query(`SELECT 1 AS ok FROM channel_members WHERE channel = $1 AND user_id = $2`, [channel, userId]);
  return rows.length > 0;
}

export async function listChannelMembers(db: Db, channel: string): Promise<string[]> {
  const rows = await db.query<{ user_id: string }>(
    `SELECT user_id FROM channel_members WHERE channel = $1 ORDER BY user_id`,
    [channel],
  );
  return rows.map((r) => r.user_id);
}
