/**
 * The benchmarks' HTTP client: HTTP/1.1 keep-alive over plain sockets, one request in flight per
 * socket, the request written as one buffer and the answer parsed just enough (status line,
 * Content-Length, body). The load generator shares the machine's two cores with the system it
 * measures, so it must be cheap: node:http's client (and undici's) used about 300 µs of CPU per
 * POST here, as much as the API took to answer it. Only what the API sends is understood: a
 * chunked or length-less answer is an error, never a guess.
 */
import { connect, type Socket } from 'node:net';

export interface HttpAnswer {
  status: number;
  body: string;
}

interface Waiting {
  head: string;
  body: Buffer;
  resolve: (a: HttpAnswer) => void;
  reject: (e: Error) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_SOCKETS = 64;

class Conn {
  private buf: Buffer = Buffer.alloc(0);
  current: Waiting | null = null;
  dead = false;
  constructor(
    readonly socket: Socket,
    private readonly done: (c: Conn) => void,
    private readonly broken: (c: Conn, e: Error) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.broken(this, e));
    socket.on('close', () => this.broken(this, new Error('connection closed')));
  }

  send(w: Waiting): void {
    this.current = w;
    this.socket.write(Buffer.concat([Buffer.from(w.head), w.body]));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const end = this.buf.indexOf(HEADER_END);
    if (end < 0 || !this.current) return;
    const head = this.buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!m) {
      this.broken(this, new Error(`answer without Content-Length: ${head.split('\r\n')[0]}`));
      return;
    }
    const total = end + 4 + Number(m[1]);
    if (this.buf.length < total) return;
    const body = this.buf.toString('utf8', end + 4, total);
    this.buf = this.buf.subarray(total);
    const w = this.current;
    this.current = null;
    w.resolve({ status, body });
    this.done(this);
  }
}

class Pool {
  private readonly idle: Conn[] = [];
  private readonly queue: Waiting[] = [];
  private open = 0;
  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  request(w: Waiting): void {
    const c = this.idle.pop();
    if (c) c.send(w);
    else if (this.open < MAX_SOCKETS) this.dial(w);
    else this.queue.push(w);
  }

  private dial(first: Waiting): void {
    this.open++;
    const socket = connect(this.port, this.host);
    const conn = new Conn(
      socket,
      (c) => this.release(c),
      (c, e) => this.drop(c, e),
    );
    conn.send(first);
  }

  private release(c: Conn): void {
    const next = this.queue.shift();
    if (next) c.send(next);
    else this.idle.push(c);
  }

  private drop(c: Conn, e: Error): void {
    if (c.dead) return;
    c.dead = true;
    this.open--;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    c.socket.destroy();
    const w = c.current;
    c.current = null;
    w?.reject(e);
    // A request queued behind a broken socket gets a new one.
    const next = this.queue.shift();
    if (next) this.request(next);
  }

  close(): void {
    for (const c of this.idle) c.socket.destroy();
    this.idle.length = 0;
  }
}

const pools = new Map<string, Pool>();

export function postJson(url: string, body: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const u = new URL(url);
  let pool = pools.get(u.host);
  if (!pool) {
    pool = new Pool(u.hostname, Number(u.port || 80));
    pools.set(u.host, pool);
  }
  const bytes = Buffer.from(body);
  let head = `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${bytes.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += '\r\n';
  const p = pool;
  return new Promise((resolve, reject) => p.request({ head, body: bytes, resolve, reject }));
}

export function closeHttp(): void {
  for (const pool of pools.values()) pool.close();
  pools.clear();
}
