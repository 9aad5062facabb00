/**
 * How a loop sleeps: until a timeout or until woken, whichever comes first. A wake while nobody
 * sleeps is kept for the next sleep, so a notification that arrives during a claim is not lost.
 */
export class Wakeup {
  private waiter: (() => void) | null = null;
  private pending = false;

  wake(): void {
    const waiter = this.waiter;
    if (waiter) waiter();
    else this.pending = true;
  }

  sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiter = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiter = done;
    });
  }
}
