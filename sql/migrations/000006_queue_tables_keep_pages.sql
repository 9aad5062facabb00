-- The queue tables (jobs, outbox) are emptied as fast as they are filled, and the maintenance
-- queue vacuums them every few seconds (src/store/ops/vacuum.ts). Vacuum would then give their
-- empty tail pages back to the file system, which needs an exclusive lock on the table (every
-- claim, completion and relay round waits behind it) and leaves the table looking tiny to the
-- planner, whose cached plans for the claim, the completion and the relay then scan the whole
-- table rather than its index as soon as it has filled up again. Keeping the pages avoids both;
-- vacuum still makes their space reusable.
ALTER TABLE jobs SET (vacuum_truncate = off);
ALTER TABLE outbox SET (vacuum_truncate = off);
