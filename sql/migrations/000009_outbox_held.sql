-- Outbox rows of channels the relay holds back (their Redis Cluster node fails) wait here, ids
-- and all, instead of at the head of the outbox: there, every relay round walked them to reach
-- the other channels' rows, so past a bound (10,000 rows) the other channels waited too. A row
-- of a channel with rows here is moved here too when the relay comes to it, so each channel's
-- rows still go out in id order (src/store/ops/outbox.ts, docs/decisions/0028-redis-cluster.md).
-- Columns as the outbox's: a migration that adds one to the outbox adds it here too.
-- Unlike jobs and outbox (000006), vacuum may give its empty pages back: it is empty but during
-- a Redis Cluster failover, and every relay round checks whether it holds anything, which on a
-- table left at its high-water mark would read every empty page until the next vacuum.
CREATE TABLE outbox_held (LIKE outbox INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE outbox_held ADD PRIMARY KEY (id);
-- Whether a channel has parked rows (one probe for each row a round looks at).
CREATE INDEX outbox_held_channel ON outbox_held (channel, id);
