/** Group commit for ingest: the generic committer now lives in src/core (the worker uses it too). */
export { GroupCommitter, type GroupCommitOptions } from '../core/group-commit.js';
