/**
 * JSON answers for the baseline fixtures' control endpoints, with a Content-Length: node:http
 * sends a body chunked once writeHead() has run without one, and the benchmarks' HTTP client
 * (lib/http.ts) reads only length-delimited answers.
 */
import type { ServerResponse } from 'node:http';

export function answerJson(res: ServerResponse, status: number, value: unknown): void {
  const body = value === undefined ? '' : JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}
