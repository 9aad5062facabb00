/**
 * Unauthenticated connections per remote address. A connection without a token at the upgrade
 * waits up to wsHelloTimeoutMs for HELLO, and the per-key connection-attempt limit cannot apply
 * before a key is known; without this cap one address could hold thousands of such sockets (file
 * descriptors and memory) for nothing.
 *
 * Each slot comes with its own release function, idempotent, so whichever way a connection
 * leaves the pending state (HELLO, timeout, bad token, client close, shutdown) it is given back
 * exactly once, and an address can never be locked out by a count that went wrong.
 *
 * The address is the TCP peer (`req.socket.remoteAddress`), never X-Forwarded-For: the header is
 * the client's to write, so trusting it would let anyone pick a fresh address per connection.
 * Behind a proxy every client shares the proxy's address; raise or disable the cap there.
 */

/** Gives the slot back; calling it again does nothing. */
export type ReleaseSlot = () => void;

export class PendingPerAddress {
  private readonly counts = new Map<string, number>();
  private held = 0;

  /** `limit` slots per address; 0 disables the cap (slots are still counted). */
  constructor(
    private readonly limit: number,
    private readonly onCount: (delta: 1 | -1) => void = () => undefined,
  ) {}

  /** Takes a slot for `address`; null when the address already holds `limit` of them. */
  acquire(address: string): ReleaseSlot | null {
    const count = this.counts.get(address) ?? 0;
    if (this.limit > 0 && count >= this.limit) return null;
    this.counts.set(address, count + 1);
    this.held++;
    this.onCount(1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      this.onCount(-1);
      const left = (this.counts.get(address) ?? 1) - 1;
      if (left > 0) this.counts.set(address, left);
      else this.counts.delete(address);
    };
  }

  /** Slots held by `address`. */
  countOf(address: string): number {
    return this.counts.get(address) ?? 0;
  }

  /** Slots held in all. */
  total(): number {
    return this.held;
  }

  /** Addresses holding at least one slot (memory is bounded by pending connections). */
  addresses(): number {
    return this.counts.size;
  }
}
