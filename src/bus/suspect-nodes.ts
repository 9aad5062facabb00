/**
 * Redis Cluster nodes whose last relay call failed, for a while. A node that hangs makes every
 * call to it wait the command timeout; once one relay call has failed, the relay's later calls
 * meant for it fail at once instead (the relay then holds their channels back without a round
 * waiting on each), until a call to it succeeds — the relay's probe (RedisBus.reachable) — or
 * SUSPECT_MS pass, when a real call tries it again.
 */
export const SUSPECT_MS = 5000;

export class SuspectNodes {
  private readonly until = new Map<string, number>();

  /** `node` is host:port, '' when the slot's owner is not known (never held suspect). */
  has(node: string, nowMs: number): boolean {
    const until = this.until.get(node);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.until.delete(node);
    return false;
  }

  failed(node: string, nowMs: number): void {
    if (node !== '') this.until.set(node, nowMs + SUSPECT_MS);
  }

  answered(node: string): void {
    this.until.delete(node);
  }
}
