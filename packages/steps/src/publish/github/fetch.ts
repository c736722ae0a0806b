import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { rootCertificates } from 'node:tls';

/** NODE_EXTRA_CA_CERTS as this process started with it: node reads the file once, at start-up. */
const STARTUP_EXTRA_CA = process.env.NODE_EXTRA_CA_CERTS;

/**
 * The extra CA file a run's environment names but this process did not start with. That happens
 * when a rehearsal passes the lab's environment to the steps in-process: node's own fetch would
 * not trust the lab's certificate, so the GitHub client needs a fetch that does.
 */
export function extraCaNotLoaded(env: NodeJS.ProcessEnv): string | undefined {
  const file = env.NODE_EXTRA_CA_CERTS;
  return file && file !== STARTUP_EXTRA_CA ? file : undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Statuses whose answer has no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const MAX_REDIRECTS = 5;

type Body = string | Uint8Array | NodeJS.ReadableStream | WebReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null | undefined;

function plainHeaders(headers: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  new Headers(headers).forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

function replayable(body: Body): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

async function send(url: URL, method: string, headers: Record<string, string>, body: Body, ca: string[], signal: AbortSignal | undefined): Promise<IncomingMessage> {
  const options = { method, headers: headers as OutgoingHttpHeaders, ...(signal ? { signal } : {}) };
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = url.protocol === 'https:' ? httpsRequest(url, { ...options, ca }, resolve) : httpRequest(url, options, resolve);
    req.on('error', reject);
    if (body === undefined || body === null) req.end();
    else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
    else {
      const source = typeof (body as WebReadableStream<Uint8Array>).getReader === 'function' ? Readable.fromWeb(body as WebReadableStream<Uint8Array>) : Readable.from(body as AsyncIterable<Uint8Array>);
      // a failed body read ends the request with that error (the answer, if any, is not used)
      pipeline(source, req).catch((err: unknown) => {
        req.destroy(err as Error);
        reject(err as Error);
      });
    }
  });
}

/**
 * A `fetch` for octokit (`request.fetch`) on node:http(s) that trusts the public roots plus the
 * given CA certificate(s). Bodies stream both ways; redirects are followed (at most five), and
 * credentials are dropped when a redirect leaves the origin, as fetch does.
 */
export function fetchTrusting(caPem: string): typeof fetch {
  const ca = [...rootCertificates, caPem];
  const impl = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    let url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    let method = (init.method ?? 'GET').toUpperCase();
    let headers = plainHeaders(init.headers);
    let body = init.body as Body;
    const signal = init.signal ?? undefined;
    for (let hop = 0; ; hop += 1) {
      let res: IncomingMessage;
      try {
        res = await send(url, method, headers, body, ca, signal);
      } catch (err) {
        if ((err as Error).name === 'AbortError') throw err;
        throw new TypeError('fetch failed', { cause: err });
      }
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECTS.has(status) && location && init.redirect !== 'manual') {
        res.resume();
        if (init.redirect === 'error' || hop >= MAX_REDIRECTS) throw new TypeError('fetch failed', { cause: new Error(`too many redirects (or redirects refused) at ${url.origin}${url.pathname}`) });
        const next = new URL(location, url);
        if (next.origin !== url.origin) {
          headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'authorization' && k !== 'cookie'));
        }
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = undefined;
          headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith('content-')));
        } else if (!replayable(body)) {
          throw new TypeError('fetch failed', { cause: new Error(`a redirect (${status}) asked to send a streamed body again`) });
        }
        url = next;
        continue;
      }
      const out = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (Array.isArray(v)) for (const one of v) out.append(k, one);
        else if (v !== undefined) out.set(k, v);
      }
      const stream = NULL_BODY.has(status) || method === 'HEAD' ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
      if (!stream) res.resume();
      return new Response(stream, { status, statusText: res.statusMessage ?? '', headers: out });
    }
  };
  return impl as typeof fetch;
}
