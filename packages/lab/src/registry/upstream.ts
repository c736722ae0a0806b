import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { runServer } from 'verdaccio';
import { LabError } from '../errors.js';

export interface UpstreamUser {
  name: string;
  password: string;
}

/**
 * Verdaccio, in this process, on 127.0.0.1 and an ephemeral port that only the lab's front
 * talks to. Offline (no uplinks), web UI off, quiet logs, packages on disk under `dir`. Users
 * come from an htpasswd file the lab writes; registration is off. Any authenticated user may
 * publish; the front decides who is authenticated and for what.
 */
export class Upstream {
  private server?: Server;
  readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });
  port = 0;

  constructor(private readonly dir: string) {}

  async start(users: UpstreamUser[]): Promise<void> {
    const storage = path.join(this.dir, 'storage');
    const htpasswd = path.join(this.dir, 'htpasswd');
    await mkdir(storage, { recursive: true });
    // sha1 ({SHA}) keeps per-request password checks cheap; these are lab-only passwords.
    const lines = users.map((u) => `${u.name}:{SHA}${createHash('sha1').update(u.password, 'utf8').digest('base64')}:lab user`);
    await writeFile(htpasswd, `${lines.join('\n')}\n`, { mode: 0o600 });
    const rule = { access: '$all', publish: '$authenticated', unpublish: '$authenticated' };
    const config = {
      self_path: path.join(this.dir, 'config.yaml'),
      configPath: path.join(this.dir, 'config.yaml'),
      storage,
      auth: { htpasswd: { file: htpasswd, max_users: -1 } },
      uplinks: {},
      packages: { '@*/*': rule, '**': rule },
      web: { enable: false },
      security: { api: { legacy: true } },
      max_body_size: '100mb',
      log: { type: 'stdout', format: 'json', level: 'fatal' },
      server: { keepAliveTimeout: 60 },
    };
    let server: Server;
    try {
      server = (await runServer(config as unknown as Parameters<typeof runServer>[0])) as Server;
    } catch (err) {
      throw new LabError('LAB_REGISTRY_START', 'Verdaccio did not start', { cause: err, hint: `check that ${this.dir} is writable` });
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.agent.destroy();
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A request of the lab's own (not a client's): GET a JSON document. */
  async getJson(pathname: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.port, path: pathname, method: 'GET', agent: this.agent, headers: { accept: 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON; keep the text
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * Passes a client's request through to Verdaccio, streaming both ways, with the given
   * Authorization header instead of the client's (none when undefined). `body` replaces the
   * request's body when the front has already read it.
   */
  forward(req: IncomingMessage, res: ServerResponse, authorization: string | undefined, body?: Buffer): Promise<void> {
    const headers: IncomingHttpHeaders = { ...req.headers };
    delete headers.authorization;
    delete headers.connection;
    delete headers['keep-alive'];
    if (authorization) headers.authorization = authorization;
    if (body) {
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
    }
    return new Promise<void>((resolve) => {
      const upstream = request({ host: '127.0.0.1', port: this.port, method: req.method, path: req.url, headers, agent: this.agent }, (up) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) {
          if (v === undefined || k === 'connection' || k === 'keep-alive' || k === 'transfer-encoding') continue;
          out[k] = v;
        }
        res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
        up.pipe(res);
        up.on('error', () => res.destroy());
        res.on('close', () => {
          if (!up.complete) up.destroy();
          resolve();
        });
      });
      upstream.on('error', (err) => {
        if (!res.headersSent) {
          const text = JSON.stringify({ error: `lab registry: the package store did not answer (${err.message})` });
          res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        } else res.destroy();
        resolve();
      });
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      if (body) upstream.end(body);
      else req.pipe(upstream);
    });
  }
}
