/**
 * Stand-ins for the client SDK's unit tests: hand-moved timers and an in-memory WebSocket whose
 * "server side" the test drives frame by frame. Integration tests use the real server instead.
 */
import type { ClientFrame, ServerFrame, ServerFrameMap, ServerFrameType } from '../../src/protocol/index.js';
import type { Timers } from '../../src/client/index.js';

interface Scheduled {
  id: number;
  at: number;
  fn: () => void;
}

export class ManualTimers implements Timers {
  private t: number;
  private seq = 0;
  private queue: Scheduled[] = [];

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.seq;
    this.queue.push({ id, at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.queue = this.queue.filter((s) => s.id !== handle);
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Delays of the timers now pending, from now. */
  delays(): number[] {
    return this.queue.map((s) => s.at - this.t);
  }

  /** Moves time forward, running each due timer at its own time, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let due = this.takeDue(end); due; due = this.takeDue(end)) due.fn();
    this.t = end;
  }

  /** The next timer due by `end`, taken off the queue, the clock moved to its time. */
  private takeDue(end: number): Scheduled | undefined {
    const due = this.queue.filter((s) => s.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
    if (!due) return undefined;
    this.queue = this.queue.filter((s) => s !== due);
    this.t = Math.max(this.t, due.at);
    return due;
  }

  /**
   * As advance(), letting promise callbacks run before each timer and at the end, as an event
   * loop does: a getToken that has answered is seen before the timer that bounds it fires.
   */
  async run(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = this.takeDue(end);
      if (!due) break;
      due.fn();
    }
    this.t = end;
    await flush();
  }

  /**
   * Moves the clock without running timers, as when a background tab's timers are throttled
   * or the machine sleeps: the timers fire late, on the next advance().
   */
  jump(ms: number): void {
    this.t += ms;
  }
}

/** Lets pending promise callbacks (getToken, the client's async open) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

type Handler = ((ev: never) => void) | null;

export class FakeSocket {
  static instances: FakeSocket[] = [];
  static last(): FakeSocket {
    const s = FakeSocket.instances.at(-1);
    if (!s) throw new Error('no socket was opened');
    return s;
  }
  static reset(): void {
    FakeSocket.instances = [];
  }

  readyState = 0;
  readonly url: string;
  readonly sent: ClientFrame[] = [];
  closedByClient: { code?: number; reason?: string } | undefined;
  onopen: Handler = null;
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;

  constructor(url: string) {
    this.url = url;
    FakeSocket.instances.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data) as ClientFrame);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  // ---- the server's side ----

  open(): void {
    this.readyState = 1;
    (this.onopen as ((ev: unknown) => void) | null)?.({});
  }

  push<T extends ServerFrameType>(type: T, payload: ServerFrameMap[T], ref?: number | string): void {
    const frame: ServerFrame<T> = ref === undefined ? { type, payload } : { type, payload, ref };
    (this.onmessage as ((ev: { data: unknown }) => void) | null)?.({ data: JSON.stringify(frame) });
  }

  pushRaw(data: unknown): void {
    (this.onmessage as ((ev: { data: unknown }) => void) | null)?.({ data });
  }

  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    (this.onerror as ((ev: unknown) => void) | null)?.({});
    (this.onclose as ((ev: { code: number; reason: string }) => void) | null)?.({ code, reason });
  }

  /** Frames of a type the client sent, oldest first. */
  frames(type: string): ClientFrame[] {
    return this.sent.filter((f) => f.type === type);
  }

  lastOf(type: string): ClientFrame {
    const f = this.frames(type).at(-1);
    if (!f) throw new Error(`the client sent no ${type}`);
    return f;
  }

  /** Opens the socket and answers the client's HELLO. */
  handshake(ack: Partial<ServerFrameMap['HELLO_ACK']> = {}): ClientFrame {
    if (this.readyState === 0) this.open();
    const hello = this.lastOf('HELLO');
    this.push(
      'HELLO_ACK',
      { session_id: 'sess-1', user_id: 'u_1', heartbeat_interval: 10_000, resumed: false, recovered: false, ...ack },
      hello.id as number,
    );
    return hello;
  }
}
