-- Event ids are UUIDv7 (src/core/ids.ts): their leading 48 bits are the millisecond they were
-- minted, just before the ingest commit that sets created_at, so the primary key already orders
-- events by creation time. The two readers of `events_created` — the `since` filter of listing
-- and bulk retry, and the pruning of idempotency keys — now bound their range on the primary key
-- (with a margin for clock steps) and check created_at exactly. One index fewer to write on every
-- ingested event (docs/decisions/0020-events-created-by-id.md).
DROP INDEX IF EXISTS events_created;
