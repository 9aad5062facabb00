import { describe, expect, it } from 'vitest';
import { CoalescingNotifier } from '../../src/store/notifier.js';

describe('CoalescingNotifier', () => {
  it('sends at once when idle, and coalesces channels queued while a send is in flight', async () => {
    const sent: string[][] = [];
    let release!: () => void;
    const notifier = new CoalescingNotifier(async (channels) => {
      sent.push(channels);
      if (sent.length === 1) await new Promise<void>((r) => (release = r));
    });
    notifier.notify(['a']);
    notifier.notify(['b', 'c']);
    notifier.notify(['b']);
    expect(sent).toEqual([['a']]);
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual([['a'], ['b', 'c']]);
  });

  it('reports a failed send and keeps working', async () => {
    const errors: unknown[] = [];
    let fail = true;
    const sent: string[][] = [];
    const notifier = new CoalescingNotifier(
      async (channels) => {
        if (fail) throw new Error('down');
        sent.push(channels);
      },
      (err) => errors.push(err),
    );
    notifier.notify(['a']);
    await new Promise((r) => setTimeout(r, 0));
    expect(errors).toHaveLength(1);
    fail = false;
    notifier.notify(['b']);
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual([['b']]);
  });
});
