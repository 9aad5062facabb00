/**
 * A TCP proxy a test controls, to take a real PostgreSQL or Redis "down" for the processes under
 * test without stopping the shared server: `cut()` drops every connection and refuses new ones,
 * `stall()` stops forwarding (a black hole), `restore()` brings it back.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server?: Server;
  private mode: 'up' | 'cut' | 'stalled' = 'up';
  private readonly pairs = new Set<{ client: Socket; upstream: Socket; queued: [Socket, Buffer][] }>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** A proxy to the host and port of a URL (postgres://…, redis://…). */
  static forUrl(url: string, defaultPort: number): TcpProxy {
    const u = new URL(url);
    return new TcpProxy(u.hostname, Number(u.port || defaultPort));
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.mode === 'cut') {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      const pair = { client, upstream, queued: [] as [Socket, Buffer][] };
      this.pairs.add(pair);
      const forward = (from: Socket, to: Socket): void => {
        from.on('data', (chunk: Buffer) => (this.mode === 'stalled' ? pair.queued.push([to, chunk]) : to.write(chunk)));
      };
      forward(client, upstream);
      forward(upstream, client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      for (const s of [client, upstream]) s.on('close', drop).on('error', drop);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The given URL with its host and port replaced by the proxy's. */
  url(original: string): string {
    const u = new URL(original);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  cut(): void {
    this.mode = 'cut';
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  stall(): void {
    this.mode = 'stalled';
  }

  restore(): void {
    this.mode = 'up';
    for (const pair of this.pairs) for (const [to, chunk] of pair.queued.splice(0)) to.write(chunk);
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
