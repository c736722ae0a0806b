import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LabService } from '../harness.js';
import { credentials, drain } from './api.js';
import { validOwner, validRepo, type Repositories } from './repos.js';

export interface GitHttpContext {
  service: LabService;
  repos: Repositories;
  token: string;
}

type GitService = 'git-upload-pack' | 'git-receive-pack';

/** The most bytes of CGI headers git http-backend may write before its body. */
const HEADER_LIMIT = 64 * 1024;

function answer(req: IncomingMessage, res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): Promise<void> {
  return drain(req).then(() => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    res.end(`${text}\n`);
  });
}

/** Where the CGI header block ends: the index after its empty line, or -1 when not yet complete. */
function headerEnd(buf: Buffer): { at: number; body: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return undefined;
  if (lf >= 0 && (crlf < 0 || lf < crlf)) return { at: lf, body: lf + 2 };
  return { at: crlf, body: crlf + 4 };
}

/**
 * Turns a CGI response into an HTTP one: parses the header block (with `Status:`), writes the
 * status and headers on `res`, then passes the body through as it comes. `finish` runs once the
 * body is complete, before the response ends.
 */
class CgiResponse extends Transform {
  private head: Buffer | undefined = Buffer.alloc(0);

  constructor(
    private readonly res: ServerResponse,
    private readonly finish: () => Promise<void>,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.head) return done(null, chunk);
    const buf = Buffer.concat([this.head, chunk]);
    const end = headerEnd(buf);
    if (!end) {
      if (buf.length > HEADER_LIMIT) return done(new Error('git http-backend wrote no end of its CGI headers'));
      this.head = buf;
      return done();
    }
    this.head = undefined;
    let status = 200;
    let reason: string | undefined;
    const headers: Record<string, string | string[]> = {};
    for (const line of buf.subarray(0, end.at).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'status') {
        const m = /^(\d{3})\s*(.*)$/.exec(value);
        if (m) {
          status = Number(m[1]);
          reason = m[2] || undefined;
        }
      } else if (headers[name] === undefined) headers[name] = value;
      else headers[name] = ([] as string[]).concat(headers[name] as string | string[], value);
    }
    if (reason) this.res.writeHead(status, reason, headers);
    else this.res.writeHead(status, headers);
    done(null, buf.subarray(end.body));
  }

  override _flush(done: TransformCallback): void {
    if (this.head) return done(new Error('git http-backend ended before its CGI headers'));
    this.finish().then(
      () => done(),
      (err: unknown) => done(err as Error),
    );
  }
}

/** CGI's HTTP_* variables for the request headers git http-backend reads (Git-Protocol, Content-Encoding, …). */
function headerVariables(req: IncomingMessage): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // the token stays out of the child's environment; Proxy is never passed (httpoxy)
    if (value === undefined || !/^[a-z0-9-]+$/.test(name) || ['authorization', 'proxy', 'content-type', 'content-length'].includes(name)) continue;
    vars[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = Array.isArray(value) ? value.join(', ') : value;
  }
  return vars;
}

/**
 * Serves the stand-in's bare repositories over git's smart HTTP protocol, as GitHub does:
 * `<url>/<owner>/<repo>.git/info/refs?service=…`, `…/git-upload-pack` and `…/git-receive-pack`
 * (the `.git` is optional). Each request runs the real `git http-backend` as a CGI, with request
 * and response bodies streamed through. Reads are anonymous; a push needs the lab token (basic
 * auth with any user name and the token as password, or a bearer token), else 401 with GitHub's
 * challenge. The routes go through the harness, so chaos rules apply: a rule on the route
 * `\.git/git-receive-pack$` with method POST faults pushes only.
 */
export function registerGitHttp(ctx: GitHttpContext): void {
  const { service, repos, token } = ctx;

  async function serve(req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL, endpoint: 'info/refs' | GitService): Promise<void> {
    const owner = params.owner ?? '';
    const repo = (params.repo ?? '').replace(/\.git$/i, '');
    const method = (req.method ?? 'GET').toUpperCase();
    const gitService = endpoint === 'info/refs' ? url.searchParams.get('service') : endpoint;
    if (gitService !== 'git-upload-pack' && gitService !== 'git-receive-pack') {
      // the dumb protocol: GitHub does not serve it either
      await answer(req, res, 403, 'This server speaks only the smart HTTP protocol; upgrade git or set protocol.version.');
      return;
    }
    const who = credentials(req, token);
    const challenge = { 'www-authenticate': 'Basic realm="GitHub"' };
    if (who === 'bad') {
      await answer(req, res, 401, 'Invalid username or token. Use the lab token as the password.', challenge);
      return;
    }
    if (gitService === 'git-receive-pack' && who !== 'ok') {
      await answer(req, res, 401, 'Pushing needs the lab token: basic auth as x-access-token with the token as password.', challenge);
      return;
    }
    if (!validOwner(owner) || !validRepo(repo) || !repos.find(owner, repo)) {
      await answer(req, res, 404, 'Repository not found.');
      return;
    }

    const length = req.headers['content-length'];
    const env = repos.env({
      GIT_PROJECT_ROOT: repos.root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${repos.relative(owner, repo)}/${endpoint}`,
      QUERY_STRING: url.search.replace(/^\?/, ''),
      REQUEST_METHOD: method,
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      ...(req.headers['content-type'] ? { CONTENT_TYPE: req.headers['content-type'] } : {}),
      ...(length && /^\d+$/.test(length) ? { CONTENT_LENGTH: length } : {}),
      // http-backend enables receive-pack only for an authenticated user
      ...(who === 'ok' ? { REMOTE_USER: 'x-access-token' } : {}),
      ...headerVariables(req),
    });
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    repos.children.add(child);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 16 * 1024) stderr += c.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => {
      child.on('error', () => resolve(null));
      child.on('close', (code) => resolve(code));
    });
    void exited.then(() => repos.children.delete(child));
    // a client that goes away takes its git with it
    res.on('close', () => {
      if (!res.writableFinished && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    });

    // the request body streams in; git may stop reading early (an error it answers at once)
    const sent = pipeline(req, child.stdin).catch(() => undefined);
    // after a push, the refs state() reports are read again before the client sees the end
    const finish = async (): Promise<void> => {
      if (gitService === 'git-receive-pack' && endpoint !== 'info/refs') {
        await exited;
        await repos.refresh(owner, repo);
      }
    };
    try {
      await pipeline(child.stdout, new CgiResponse(res, finish), res);
    } catch (err) {
      if (!res.headersSent && !res.destroyed) {
        const code = await exited;
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`git http-backend failed (exit ${code ?? 'unknown'}): ${stderr.trim() || (err as Error).message}\n`);
      } else res.destroy();
    } finally {
      await sent;
    }
  }

  service.route('GET', '/:owner/:repo/info/refs', (req, res, params, url) => serve(req, res, params, url, 'info/refs'));
  service.route('POST', '/:owner/:repo/git-upload-pack', (req, res, params, url) => serve(req, res, params, url, 'git-upload-pack'));
  service.route('POST', '/:owner/:repo/git-receive-pack', (req, res, params, url) => serve(req, res, params, url, 'git-receive-pack'));
}
