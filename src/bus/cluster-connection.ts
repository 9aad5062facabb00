/**
 * The Redis Cluster side of the connections (connection.ts): a cluster client that can start
 * over through any node it has seen, and, when a command times out, a probe that drops only the
 * node that does not answer (docs/decisions/0028).
 */
import { Cluster, type ClusterNode, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';

/** ioredis's error for a command past its commandTimeout. */
export const isTimeout = (err: unknown): boolean => err instanceof Error && err.message === 'Command timed out';

/** Every node the cluster client knows, primaries and replicas, as host and port. */
export function knownNodes(cluster: Cluster): { host: string; port: number }[] {
  return cluster.nodes('all').map((n) => ({ host: n.options.host ?? '127.0.0.1', port: n.options.port ?? 6379 }));
}

/** host:port of the URL's node (the cluster's other nodes are discovered from it). */
function seedNode(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) };
}

/**
 * A cluster client that, when it has to start over (every node lost, or a failed ready check),
 * starts from every node the cluster last reported as well as the URL's: with the URL's node the
 * only way in, a client that lost its connections while that node was down would stay down
 * however many other nodes answer.
 */
export function openCluster(url: string, common: RedisOptions, retry: (times: number) => number): Cluster {
  const seed = seedNode(url);
  const cluster = new Cluster([seed], clusterOptions(url, common, retry));
  cluster.on('refresh', () => {
    const known = knownNodes(cluster);
    // Read at each connect (ioredis Cluster#connect); not part of its typed surface.
    (cluster as unknown as { startupNodes: ClusterNode[] }).startupNodes = [seed, ...known.filter((n) => n.host !== seed.host || n.port !== seed.port)];
  });
  return cluster;
}

/**
 * The URL's credentials, TLS and database apply to every node the cluster client connects to;
 * a cluster has only database 0. Commands are never queued while the cluster is unreachable,
 * as on one server; MOVED/ASK redirections (a slot migrating, a failover) are still followed.
 */
function clusterOptions(url: string, common: RedisOptions, retry: (times: number) => number): ClusterOptions {
  const u = new URL(url);
  const auth: RedisOptions = {};
  if (u.username) auth.username = decodeURIComponent(u.username);
  if (u.password) auth.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') auth.tls = {};
  return {
    enableOfflineQueue: false,
    // Node names are used as given (the URL's, and those the cluster reports), never resolved to
    // addresses first: a TLS certificate names hosts, and a connection to a bare address fails
    // its check.
    dnsLookup: (address, callback) => callback(null, address),
    clusterRetryStrategy: retry,
    slotsRefreshTimeout: common.connectTimeout,
    redisOptions: { ...common, ...auth },
  };
}

/** Nodes whose PING is under way (one probe per node at a time). */
const probing = new WeakSet<Redis>();

/**
 * PINGs every connected node of the cluster; a node whose answer does not come within the command
 * timeout (it queues behind whatever hangs there) loses its connection, and the next command for
 * its slots opens a fresh one. The other nodes keep theirs.
 * The node's pending commands are failed first with an error of our own: failed by the plain
 * close instead ("Connection is closed."), the cluster client would send them again on another
 * connection while the hung node may still run the first copy, so they could run twice.
 */
export function dropHungNodes(cluster: Cluster): void {
  for (const node of cluster.nodes('all')) {
    if (node.status !== 'ready' || probing.has(node)) continue;
    probing.add(node);
    node.ping().then(
      () => probing.delete(node),
      (err: unknown) => {
        probing.delete(node);
        if (!isTimeout(err) || node.status !== 'ready') return;
        const dropped = new Error(`Redis node ${node.options.host}:${node.options.port} did not answer in time; its connection was dropped`);
        node.recoverFromFatalError(dropped, dropped, {});
      },
    );
  }
}
