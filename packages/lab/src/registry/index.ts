/**
 * The lab's npm registry: Verdaccio (offline, on disk) behind a small front that adds what
 * the public registry has and Verdaccio lacks:
 *
 * - npm trusted publishing: `POST /-/npm/v1/oidc/token/exchange/package/<escaped name>` takes a
 *   GitHub Actions ID token as bearer, checks it against the package's trusted publisher binding
 *   and answers `201 {"token"}`: a 15-minute token that can publish only that package.
 * - attestations: `GET /-/npm/v1/attestations/<name>@<version>` answers
 *   `{"attestations": [{"predicateType", "bundle"}]}` or 404. A publisher stores one with
 *   `PUT` on the same path, body `{"predicateType", "bundle"}`, using its exchanged token (or the
 *   admin token); only for its own package and a version that exists.
 * - chaos: every route, the front's own and the proxied ones, goes through `chaos` first.
 *
 * Tokens. The front answers for all tokens; Verdaccio only ever sees its two lab users:
 * - `adminToken` (a classic-style `npm_…` token of the lab admin) may do anything. It exists for
 *   one job only: publishing the first version of a new package name, which trusted publishing
 *   cannot do (on the public registry too). Everything after that goes through the exchange.
 * - an exchanged token may read anything and write only `PUT /<its package>` (publish) and its
 *   package's attestations; any other write is refused with 403.
 * - any other bearer token is refused with 401. Requests without a token are anonymous
 *   (reading works, publishing does not).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, jwtVerify, SignJWT } from 'jose';
import { LabError } from '../errors.js';
import { type Chaos, LabService, readBody, readJson, type RequestRecord, sendJson } from '../harness.js';
import { persisted } from '../state.js';
import { AttestationStore, checkAttestation } from './attestations.js';
import { escapePackageName, isValidPackageName, packageOfPath, splitSpec } from './names.js';
import { invalidName, matchTrustedPublisher, missingToken, packageNotFound, type RefusalReason, type TrustedPublisher, validateTrustedPublishers, verifyIdToken } from './trust.js';
import { Upstream } from './upstream.js';

export { bootstrapPackage, BOOTSTRAP_VERSION } from './bootstrap.js';
export type { TrustedPublisher, RefusalReason } from './trust.js';
export type { Attestation } from './attestations.js';

export interface RegistryLabOptions {
  /** The ID tokens' issuer (the lab OIDC service's `issuer`). */
  oidcIssuer: string;
  /** Where its signing keys are (`${issuer}/.well-known/jwks`). */
  jwksUri: string;
  trustedPublishers: TrustedPublisher[];
  /** Packages, attestations and keys survive restarts here (`<stateDir>/registry`, `<stateDir>/keys`); else a temp folder removed on stop. */
  stateDir?: string;
  /** The registry's port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
}

/** One exchange the registry answered, for tests and reports. */
export interface ExchangeRecord {
  package: string;
  status: number;
  /** Absent when the exchange succeeded. */
  reason?: RefusalReason;
  message?: string;
  repository?: string;
  workflowRef?: string;
  environment?: string;
}

export interface RegistryLab {
  /** The registry URL, with a trailing slash: `http://127.0.0.1:PORT/`. */
  url: string;
  /** The audience npm requests for this registry: `npm:` + its hostname (`npm:127.0.0.1`). */
  audience: string;
  /** Faults for every route: exchange, publish PUT, packuments, tarballs, attestations. */
  chaos: Chaos;
  /** Every request the registry answered (method, path, status, fault). */
  log: RequestRecord[];
  /** Every exchange, granted or refused, with its reason. */
  exchanges: ExchangeRecord[];
  /** The lab admin's classic token: only for the first publish of a new package name. */
  adminToken: string;
  setTrustedPublishers(list: TrustedPublisher[]): void;
  stop(): Promise<void>;
}

/** How long an exchanged token is valid, in seconds (npm's are short-lived too). */
export const EXCHANGED_TOKEN_TTL = 15 * 60;
const TOKEN_ISSUER = 'mcp-release-lab-registry';
/** The largest publish document the front reads (the tarball travels in it, base64). */
const PUBLISH_LIMIT = 100 * 1024 * 1024;
const ADMIN_USER = 'lab-admin';
const PUBLISHER_USER = 'oidc-publisher';
/** Host names a client on this machine may use for the registry; the audience follows the one it used. */
const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost']);

interface Credentials {
  adminPassword: string;
  publisherPassword: string;
  adminToken: string;
  tokenSecret: string;
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function classicToken(): string {
  return `npm_${Array.from(randomBytes(36), (b) => BASE62[b % 62]).join('')}`;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function sendError(res: ServerResponse, status: number, message: string, extra: Record<string, unknown> = {}): void {
  // npm shows `error` for failed requests and logs `message` for refused exchanges: send both.
  sendJson(res, status, { error: message, message, ...extra });
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _chunk of req) {
    // discard
  }
}

function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

type Caller = { kind: 'admin' } | { kind: 'publisher'; package: string } | { kind: 'anonymous' } | { kind: 'passthrough' } | { kind: 'refused'; status: number; message: string };

export async function startRegistry(options: RegistryLabOptions): Promise<RegistryLab> {
  let bindings = validateTrustedPublishers(options.trustedPublishers);
  const base = options.stateDir ? path.join(options.stateDir, 'registry') : await mkdtemp(path.join(os.tmpdir(), 'mcp-release-registry-'));
  const temporary = !options.stateDir;
  await mkdir(base, { recursive: true });
  const creds = await persisted<Credentials>(options.stateDir, 'registry-credentials', async () => ({
    adminPassword: randomBytes(24).toString('hex'),
    publisherPassword: randomBytes(24).toString('hex'),
    adminToken: classicToken(),
    tokenSecret: randomBytes(32).toString('hex'),
  }));
  const secret = Buffer.from(creds.tokenSecret, 'hex');
  const adminAuth = basic(ADMIN_USER, creds.adminPassword);
  const publisherAuth = basic(PUBLISHER_USER, creds.publisherPassword);
  const jwks = createRemoteJWKSet(new URL(options.jwksUri));
  const store = new AttestationStore(path.join(base, 'attestations'));
  const upstream = new Upstream(base);
  const service = new LabService({ name: 'registry' });
  const exchanges: ExchangeRecord[] = [];

  /** The package an exchanged token may publish, or why the token is no good. */
  async function exchangedToken(token: string): Promise<{ package: string } | { expired: true } | undefined> {
    try {
      const { payload } = await jwtVerify(token, secret, { issuer: TOKEN_ISSUER, algorithms: ['HS256'] });
      return typeof payload.pkg === 'string' ? { package: payload.pkg } : undefined;
    } catch (err) {
      return (err as { code?: unknown }).code === 'ERR_JWT_EXPIRED' ? { expired: true } : undefined;
    }
  }

  async function caller(req: IncomingMessage): Promise<Caller> {
    if (!req.headers.authorization) return { kind: 'anonymous' };
    const token = bearer(req);
    if (!token) return { kind: 'passthrough' };
    if (token === creds.adminToken) return { kind: 'admin' };
    const exchanged = await exchangedToken(token);
    if (exchanged && 'expired' in exchanged) return { kind: 'refused', status: 401, message: 'Unauthorized: this trusted-publishing token has expired; exchange a new ID token' };
    if (exchanged) return { kind: 'publisher', package: exchanged.package };
    return { kind: 'refused', status: 401, message: 'Unauthorized: unknown, revoked or expired token' };
  }

  function forbidden(name: string | undefined, allowed: string): string {
    return name && name !== allowed
      ? `You do not have permission to publish "${name}". Are you logged in as the correct user? (this trusted-publishing token is limited to "${allowed}")`
      : `Forbidden: a trusted-publishing token for "${allowed}" can only publish new versions of it`;
  }

  async function proxy(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const who = await caller(req);
    const method = (req.method ?? 'GET').toUpperCase();
    switch (who.kind) {
      case 'refused':
        await drain(req);
        sendError(res, who.status, who.message);
        return;
      case 'admin':
        return upstream.forward(req, res, adminAuth);
      case 'anonymous':
        return upstream.forward(req, res, undefined);
      case 'passthrough':
        return upstream.forward(req, res, req.headers.authorization);
      case 'publisher': {
        if (method === 'GET' || method === 'HEAD') return upstream.forward(req, res, publisherAuth);
        const target = packageOfPath(url.pathname);
        if (method !== 'PUT' || !target || target.rest.length !== 0 || target.name !== who.package) {
          await drain(req);
          sendError(res, 403, forbidden(target?.name, who.package));
          return;
        }
        // A publish document names the package and carries the new version's tarball; a PUT
        // without one (deprecate, owner or tag edits) is not a publish.
        const body = await readBody(req, PUBLISH_LIMIT);
        let doc: { name?: unknown; versions?: unknown; _attachments?: unknown } | undefined;
        try {
          doc = JSON.parse(body.toString('utf8')) as typeof doc;
        } catch {
          doc = undefined;
        }
        if (!doc || typeof doc !== 'object') return sendError(res, 400, 'the publish document is not JSON');
        if (doc.name !== who.package) return sendError(res, 403, forbidden(typeof doc.name === 'string' ? doc.name : undefined, who.package));
        const attachments = doc._attachments && typeof doc._attachments === 'object' ? Object.keys(doc._attachments) : [];
        if (attachments.length === 0 || !doc.versions || typeof doc.versions !== 'object') return sendError(res, 403, forbidden(undefined, who.package));
        return upstream.forward(req, res, publisherAuth, body);
      }
    }
  }

  async function packageExists(name: string): Promise<boolean> {
    const { status } = await upstream.getJson(`/${escapePackageName(name)}`);
    return status === 200;
  }

  function expectedAudiences(req: IncomingMessage): string[] {
    let host = '127.0.0.1';
    try {
      host = new URL(`http://${req.headers.host ?? '127.0.0.1'}`).hostname;
    } catch {
      // keep the default
    }
    return [`npm:${LOOPBACK_NAMES.has(host) ? host : '127.0.0.1'}`];
  }

  const exchange = async (req: IncomingMessage, res: ServerResponse, params: Record<string, string>): Promise<void> => {
    await drain(req);
    const name = params.scope ? `${params.scope}/${params.name}` : (params.name ?? '');
    const record = (entry: Omit<ExchangeRecord, 'package'>): void => {
      exchanges.push({ package: name, ...entry });
      if (exchanges.length > 1000) exchanges.splice(0, exchanges.length - 1000);
    };
    const idToken = bearer(req);
    const refused = (r: { status: number; reason: RefusalReason; message: string }, claims: Partial<ExchangeRecord> = {}): void => {
      record({ status: r.status, reason: r.reason, message: r.message, ...claims });
      sendError(res, r.status, r.message, { code: r.reason });
    };
    if (!idToken) return refused(missingToken());
    if (!isValidPackageName(name)) return refused(invalidName(name));
    const verified = await verifyIdToken(idToken, { issuer: options.oidcIssuer, audiences: expectedAudiences(req), jwks });
    if ('refusal' in verified) return refused(verified.refusal);
    const { claims } = verified;
    const seen = { repository: claims.repository, workflowRef: claims.workflow_ref, ...(claims.environment ? { environment: claims.environment } : {}) };
    // Order of the checks: a binding at all, then the package, then the binding's claims.
    const match = matchTrustedPublisher(name, claims, bindings);
    if ('refusal' in match && match.refusal.reason === 'no-trusted-publisher') return refused(match.refusal, seen);
    if (!(await packageExists(name))) return refused(packageNotFound(name), seen);
    if ('refusal' in match) return refused(match.refusal, seen);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ pkg: name, repository: claims.repository, workflow_ref: claims.workflow_ref })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(`oidc:${claims.repository}`)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + EXCHANGED_TOKEN_TTL)
      .sign(secret);
    record({ status: 201, ...seen });
    sendJson(res, 201, { token });
  };

  /** `name@version` from the route: npm escapes a scope's slash, other clients may not. */
  const specOf = (params: Record<string, string>): string => (params.scope ? `${params.scope}/${params.spec}` : (params.spec ?? ''));

  const getAttestations = async (_req: IncomingMessage, res: ServerResponse, params: Record<string, string>): Promise<void> => {
    const spec = splitSpec(specOf(params));
    const found = spec ? await store.get(spec.name, spec.version) : undefined;
    if (!spec || !found) return sendError(res, 404, 'Not found');
    sendJson(res, 200, { attestations: found });
  };

  const putAttestation = async (req: IncomingMessage, res: ServerResponse, params: Record<string, string>): Promise<void> => {
    const spec = splitSpec(specOf(params));
    const who = await caller(req);
    if (who.kind === 'refused') {
      await drain(req);
      return sendError(res, who.status, who.message);
    }
    if (who.kind !== 'admin' && who.kind !== 'publisher') {
      await drain(req);
      return sendError(res, 401, 'Unauthorized: storing an attestation needs the package\'s trusted-publishing token');
    }
    if (!spec) {
      await drain(req);
      return sendError(res, 400, `"${specOf(params)}" is not <name>@<version>`);
    }
    if (who.kind === 'publisher' && who.package !== spec.name) {
      await drain(req);
      return sendError(res, 403, forbidden(spec.name, who.package));
    }
    const body = await readJson<unknown>(req, 4 * 1024 * 1024);
    const doc = await upstream.getJson(`/${escapePackageName(spec.name)}`);
    const versions = (doc.body as { versions?: Record<string, { dist?: { integrity?: string } }> } | undefined)?.versions;
    const version = doc.status === 200 ? versions?.[spec.version] : undefined;
    if (!version) return sendError(res, 404, `${spec.name}@${spec.version} is not in this registry`);
    const checked = checkAttestation(body, spec.name, spec.version, version.dist?.integrity);
    if ('status' in checked) return sendError(res, checked.status, checked.message);
    const { outcome, attestations } = await store.put(spec.name, spec.version, checked);
    if (outcome === 'conflict') return sendError(res, 409, `${spec.name}@${spec.version} already has a different ${checked.predicateType} attestation`);
    sendJson(res, outcome === 'created' ? 201 : 200, { attestations });
  };

  const EXCHANGE = '/-/npm/v1/oidc/token/exchange/package';
  const ATTESTATIONS = '/-/npm/v1/attestations';
  service.route('POST', `${EXCHANGE}/:name`, exchange).route('POST', `${EXCHANGE}/:scope/:name`, exchange);
  service.route('GET', `${ATTESTATIONS}/:spec`, getAttestations).route('GET', `${ATTESTATIONS}/:scope/:spec`, getAttestations);
  service.route('PUT', `${ATTESTATIONS}/:spec`, putAttestation).route('PUT', `${ATTESTATIONS}/:scope/:spec`, putAttestation);
  // Everything else goes to Verdaccio. The router matches whole segments, so one route per depth.
  for (const method of ['GET', 'PUT', 'POST', 'DELETE', 'PATCH']) {
    service.route(method, '/', (req, res, _p, url) => proxy(req, res, url));
    for (let depth = 1; depth <= 16; depth++) {
      const pattern = `/${Array.from({ length: depth }, (_, i) => `:p${i}`).join('/')}`;
      service.route(method, pattern, (req, res, _p, url) => proxy(req, res, url));
    }
  }

  try {
    await upstream.start([
      { name: ADMIN_USER, password: creds.adminPassword },
      { name: PUBLISHER_USER, password: creds.publisherPassword },
    ]);
    try {
      await service.start(options.port ?? 0);
    } catch (err) {
      throw new LabError('LAB_REGISTRY_START', `the registry could not listen on 127.0.0.1:${options.port ?? 0}`, { cause: err, hint: 'pick another port, or 0 for a free one' });
    }
  } catch (err) {
    await upstream.stop();
    if (temporary) await rm(base, { recursive: true, force: true });
    throw err;
  }

  let stopped = false;
  return {
    url: `${service.url}/`,
    audience: `npm:${new URL(service.url).hostname}`,
    chaos: service.chaos,
    log: service.log,
    exchanges,
    adminToken: creds.adminToken,
    setTrustedPublishers(list: TrustedPublisher[]): void {
      bindings = validateTrustedPublishers(list);
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await service.stop();
      await upstream.stop();
      if (temporary) await rm(base, { recursive: true, force: true });
    },
  };
}
