import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { LabError } from './errors.js';

/** A fault a service can be told to inject into the next N matching requests. */
export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'reset' }
  | { kind: 'delay'; ms: number }
  | { kind: 'timeout' };

export interface FaultRule {
  /** A regular expression matched against the request path (without the query). */
  route: string;
  method?: string;
  /** How many matching requests fail; then the rule is spent. */
  count: number;
  fault: Fault;
}

export interface RequestRecord {
  method: string;
  path: string;
  status: number | 'reset' | 'timeout';
  fault?: Fault['kind'];
}

/** Fault rules of one service, consumed in order. */
export class Chaos {
  private rules: Array<FaultRule & { left: number; re: RegExp }> = [];

  add(rule: FaultRule): void {
    if (!Number.isInteger(rule.count) || rule.count < 1 || rule.count > 10_000) {
      throw new LabError('LAB_CHAOS_INVALID', `chaos count ${rule.count} must be a whole number from 1 to 10000`, { hint: 'e.g. {"route": "^/api/v1/log/entries$", "count": 1, "fault": {"kind": "status", "status": 503}}' });
    }
    let re: RegExp;
    try {
      re = new RegExp(rule.route);
    } catch (err) {
      throw new LabError('LAB_CHAOS_INVALID', `chaos route ${JSON.stringify(rule.route)} is not a regular expression`, { cause: err, hint: 'give route as a regular expression source, e.g. "^/token"' });
    }
    this.rules.push({ ...rule, left: rule.count, re });
  }

  clear(): void {
    this.rules = [];
  }

  pending(): FaultRule[] {
    return this.rules.filter((r) => r.left > 0).map(({ route, method, fault, left }) => ({ route, ...(method ? { method } : {}), count: left, fault }));
  }

  /** The fault for this request, if a rule matches; consumes one of its count. */
  take(method: string, path: string): Fault | undefined {
    const rule = this.rules.find((r) => r.left > 0 && (!r.method || r.method.toUpperCase() === method) && r.re.test(path));
    if (!rule) return undefined;
    rule.left -= 1;
    return rule.fault;
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL) => Promise<void> | void;

interface RouteEntry {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

/** Turns `/repos/:owner/:repo/releases/:id` into a regular expression with named parts; `:rest*` spans slashes. */
function compile(pattern: string): { re: RegExp; keys: string[] } {
  const keys: string[] = [];
  const src = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)(\\\*)?/g, (_m, k: string, star?: string) => {
    keys.push(k);
    return star ? '(.+)' : '([^/]+)';
  });
  return { re: new RegExp(`^${src}$`), keys };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads a request body up to `limit` bytes; larger bodies are refused with 413. */
export async function readBody(req: IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new LabError('LAB_BODY_TOO_LARGE', `request body over ${limit} bytes`, { hint: 'send a smaller body' });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function readJson<T>(req: IncomingMessage, limit?: number): Promise<T> {
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (err) {
    throw new LabError('LAB_BAD_JSON', 'the request body is not JSON', { cause: err });
  }
}

export interface ServiceOptions {
  name: string;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

/**
 * One lab service: an HTTP(S) server on 127.0.0.1 with a small router, a request log and chaos
 * hooks. Faults can be set in-process (`service.chaos.add`) or over HTTP on the service itself:
 * `POST /__lab/chaos` with a FaultRule, `DELETE /__lab/chaos`, `GET /__lab/chaos`.
 */
export class LabService {
  readonly name: string;
  readonly chaos = new Chaos();
  readonly log: RequestRecord[] = [];
  private readonly routes: RouteEntry[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly held = new Set<ServerResponse>();
  private baseUrl = '';
  private readonly tls: boolean;

  constructor(options: ServiceOptions) {
    this.name = options.name;
    this.tls = Boolean(options.tls);
    const listener = (req: IncomingMessage, res: ServerResponse): void => void this.dispatch(req, res);
    this.server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createHttpServer(listener);
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    return this.baseUrl;
  }

  route(method: string, pattern: string, handler: Handler): this {
    const { re, keys } = compile(pattern);
    this.routes.push({ method: method.toUpperCase(), pattern: re, keys, handler });
    return this;
  }

  async start(port = 0): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    const { port: bound } = this.server.address() as AddressInfo;
    this.baseUrl = `${this.tls ? 'https' : 'http'}://127.0.0.1:${bound}`;
    return this.baseUrl;
  }

  /** Overrides the scheme/host part of the URL (e.g. https://localhost:PORT for TLS clients). */
  setUrl(url: string): void {
    this.baseUrl = url;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private record(r: RequestRecord): void {
    this.log.push(r);
    if (this.log.length > 10_000) this.log.splice(0, this.log.length - 10_000);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://lab.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    try {
      if (url.pathname === '/__lab/chaos') {
        if (method === 'POST') {
          this.chaos.add(await readJson<FaultRule>(req, 64 * 1024));
          sendJson(res, 201, { pending: this.chaos.pending() });
        } else if (method === 'DELETE') {
          this.chaos.clear();
          sendJson(res, 200, { pending: [] });
        } else sendJson(res, 200, { service: this.name, pending: this.chaos.pending(), requests: this.log.length });
        return;
      }
      const fault = this.chaos.take(method, url.pathname);
      if (fault) {
        if (fault.kind === 'reset') {
          this.record({ method, path: url.pathname, status: 'reset', fault: 'reset' });
          req.socket.destroy();
          return;
        }
        if (fault.kind === 'timeout') {
          this.record({ method, path: url.pathname, status: 'timeout', fault: 'timeout' });
          this.held.add(res);
          res.on('close', () => this.held.delete(res));
          return; // never answered; the client's own timeout fires
        }
        if (fault.kind === 'status') {
          this.record({ method, path: url.pathname, status: fault.status, fault: 'status' });
          const body = fault.body ?? JSON.stringify({ message: `lab fault: ${fault.status}` });
          res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.headers ?? {}) });
          res.end(body);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(fault.ms, 120_000)));
      }
      for (const r of this.routes) {
        if (r.method !== method && !(r.method === 'GET' && method === 'HEAD')) continue;
        const m = r.pattern.exec(url.pathname);
        if (!m) continue;
        const params: Record<string, string> = {};
        r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1] as string)));
        res.on('finish', () => this.record({ method, path: url.pathname, status: res.statusCode, ...(fault ? { fault: fault.kind } : {}) }));
        await r.handler(req, res, params, url);
        return;
      }
      this.record({ method, path: url.pathname, status: 404 });
      sendJson(res, 404, { message: 'Not Found' });
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = err instanceof LabError && err.code === 'LAB_BODY_TOO_LARGE' ? 413 : err instanceof LabError && err.code === 'LAB_BAD_JSON' ? 400 : err instanceof LabError && err.code === 'LAB_CHAOS_INVALID' ? 400 : 500;
      this.record({ method, path: url.pathname, status });
      sendJson(res, status, { message: (err as Error).message });
    }
  }
}
