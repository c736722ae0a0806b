import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithub } from '@mcp-release/lab';
import { extraCaNotLoaded, fetchTrusting } from './fetch.js';

interface Seen {
  method: string;
  path: string;
  authorization?: string;
  contentType?: string;
  bytes: number;
}

/** A server that answers `/go/<status>/<target>` with that redirect and echoes every other request. */
async function echoServer(seen: Seen[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req: IncomingMessage, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', bytes, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}) });
      const m = /^\/go\/(\d{3})\/(.+)$/.exec(req.url ?? '');
      if (m) {
        res.writeHead(Number(m[1]), { location: decodeURIComponent(m[2] as string) }).end();
        return;
      }
      if (req.url === '/empty') {
        res.writeHead(204).end();
        return;
      }
      if (req.url === '/hang') return; // never answered
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] }).end(JSON.stringify({ method: req.method, bytes }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('fetchTrusting', () => {
  const seen: Seen[] = [];
  let a: { server: Server; url: string };
  let b: { server: Server; url: string };
  const f = fetchTrusting('');
  beforeAll(async () => {
    a = await echoServer(seen);
    b = await echoServer(seen);
  });
  afterAll(async () => {
    for (const s of [a, b]) {
      s?.server.closeAllConnections();
      await new Promise((r) => s?.server.close(r));
    }
  });

  it('follows redirects, keeping the token on the same origin and dropping it on another', async () => {
    seen.length = 0;
    const headers = { authorization: 'token secret' };
    const same = await f(`${a.url}/go/302/${encodeURIComponent(`${a.url}/file`)}`, { headers });
    expect(same.status).toBe(200);
    const other = await f(`${a.url}/go/302/${encodeURIComponent(`${b.url}/file`)}`, { headers });
    expect(await other.json()).toEqual({ method: 'GET', bytes: 0 });
    expect(seen.map((s) => [s.path, s.authorization])).toEqual([
      ['/go/302/' + encodeURIComponent(`${a.url}/file`), 'token secret'],
      ['/file', 'token secret'],
      ['/go/302/' + encodeURIComponent(`${b.url}/file`), 'token secret'],
      ['/file', undefined],
    ]);
    expect(other.headers.get('set-cookie')).toBe('a=1, b=2');
  });

  it('turns a POST into a GET on 303, re-sends a buffered body on 307, and refuses to re-send a stream', async () => {
    seen.length = 0;
    const see = await f(`${a.url}/go/303/%2Fdone`, { method: 'POST', body: 'abc', headers: { 'content-type': 'text/plain' } });
    expect(await see.json()).toEqual({ method: 'GET', bytes: 0 });
    expect(seen[1]).toMatchObject({ method: 'GET', path: '/done', bytes: 0 });
    expect(seen[1]?.contentType).toBeUndefined();
    const again = await f(`${a.url}/go/307/%2Fdone`, { method: 'POST', body: Buffer.from('abcd') });
    expect(await again.json()).toEqual({ method: 'POST', bytes: 4 });
    await expect(f(`${a.url}/go/307/%2Fdone`, { method: 'POST', body: Readable.from([Buffer.from('x')]) as unknown as RequestInit['body'], duplex: 'half' } as RequestInit)).rejects.toThrow(TypeError);
    await expect(f(`${a.url}/go/302/%2Fdone`, { redirect: 'error' })).rejects.toThrow(TypeError);
  });

  it('streams a request body, answers 204 without a body, and aborts on its signal', async () => {
    const chunks = Array.from({ length: 16 }, () => Buffer.alloc(64 * 1024, 1));
    const res = await f(`${a.url}/upload`, { method: 'POST', body: Readable.from(chunks) as unknown as RequestInit['body'], duplex: 'half' } as RequestInit);
    expect(await res.json()).toEqual({ method: 'POST', bytes: 16 * 64 * 1024 });
    const empty = await f(`${a.url}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    await expect(f(`${a.url}/hang`, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({ name: expect.stringMatching(/AbortError|TimeoutError/) });
  });

  it('trusts the given CA (and only with it), against the GitHub stand-in over TLS', async () => {
    const lab = await startGithub({ tls: true });
    try {
      const ca = await readFile(lab.caFile as string, 'utf8');
      const ok = await fetchTrusting(ca)(`${lab.url}/rate_limit`, { headers: { authorization: `token ${lab.token}` } });
      expect(ok.status).toBe(200);
      const refused = await fetchTrusting('')(`${lab.url}/rate_limit`).catch((err: Error) => err);
      expect(refused).toBeInstanceOf(TypeError);
      expect(((refused as Error).cause as NodeJS.ErrnoException).code).toMatch(/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);
    } finally {
      await lab.stop();
    }
  });

  it('is needed only for an extra CA this process did not start with', () => {
    expect(extraCaNotLoaded({})).toBeUndefined();
    expect(extraCaNotLoaded({ NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS })).toBeUndefined();
    expect(extraCaNotLoaded({ NODE_EXTRA_CA_CERTS: 'lab-ca.pem' })).toBe('lab-ca.pem');
  });
});
