/**
 * publishMany over channels that live on different Redis Cluster nodes: the channels whose node
 * answered went out, the others did not. `published` is what went out (in message order), and
 * none of the messages of `failedChannels` is known to have been appended: with a receipt slot a
 * retry leaves out any that were appended after all (a reply lost on the way back). `cause` is the
 * first failure. One Redis or the memory bus never publishes part of a call: they throw the error
 * itself, and so does publish() for its one channel.
 */
import type { Publication } from './types.js';

export class PartialPublishError extends Error {
  override readonly name = 'PartialPublishError';

  constructor(
    readonly published: Publication[],
    readonly failedChannels: ReadonlySet<string>,
    override readonly cause: unknown,
  ) {
    super(`publish failed on ${failedChannels.size} channel(s): ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}
