/**
 * The worker's group commit of completions: while one completeMany is in flight, the
 * completions that finish meanwhile queue and go together in the next one (up to `maxBatch`),
 * so a busy worker pays one commit for many jobs instead of one each. Every job still gets its
 * own answer from the store, so fencing and lease loss stay per job; a failed commit fails each
 * of its jobs, which retry on their own (job.ts).
 */
import type { Clock } from '../core/clock.js';
import { GroupCommitter } from '../core/group-commit.js';
import type { CompleteInput, CompleteItem, JobRef, Store } from '../store/types.js';

export type CompleteFn = (ref: JobRef, input: CompleteInput) => Promise<boolean>;

export function groupCompletions(store: Store, clock: Clock, maxBatch: number): CompleteFn {
  const committer = new GroupCommitter<CompleteItem, boolean>({
    maxBatch,
    // Two commits in flight: one filling while the other is written (as ingest does).
    maxInFlight: 2,
    // `now` at the write, as complete() had it: the fence checks the lease at commit time.
    commit: (items) => store.completeMany(items, clock.now()),
  });
  return (job, input) => committer.submit({ job, input });
}
