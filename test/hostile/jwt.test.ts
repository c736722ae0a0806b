/**
 * Malformed and oversized JSON Web Tokens. The publish path's own reading of the job's ID token
 * (packages/steps/src/publish/npm/oidc.ts) turns every one into a coded error before the registry
 * is asked anything, and explains refusals whatever types the claims have; the lab's Fulcio and
 * the lab registry's token exchange refuse them with a reason and issue nothing, and keep serving.
 * (sigstore.test.ts covers forged, expired, wrong-issuer and wrong-audience tokens at Fulcio;
 * exchange.test.ts the refusals of well-formed tokens.)
 */
import { generateKeyPairSync, sign as signData } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabService, OidcService, startRegistry, startSigstore, type RegistryLab, type SigstoreLab } from '@mcp-release/lab';
import { diagnoseRefusal, preflightExchange, readPublisherClaims, requestIdToken, type PublisherClaims } from '../../packages/steps/src/publish/npm/oidc.js';
import type { RetryPolicy, Timing } from '../../packages/steps/src/publish/npm/registry.js';
import { caught } from '../helpers/tmp.js';

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const HEADER = b64url({ alg: 'RS256', kid: 'lab-oidc-1', typ: 'JWT' });

/** Tokens that are not JWTs, or whose parts are not what a JWT holds. */
const MALFORMED: Array<[string, string]> = [
  ['empty', ''],
  ['one word', 'garbage'],
  ['two parts', `${HEADER}.${b64url({ sub: 'x' })}`],
  ['four parts', `${HEADER}.${b64url({ sub: 'x' })}.sig.extra`],
  ['a payload that is not JSON', `${HEADER}.${b64url('not json')}.sig`],
  ['a payload that is a list', `${HEADER}.${b64url([1, 2])}.sig`],
  ['a payload that is a string', `${HEADER}.${b64url('"claims"')}.sig`],
  ['a payload that is null', `${HEADER}.${b64url('null')}.sig`],
  ['characters outside base64url', `${HEADER}.$(id)!.sig`],
  ['a header that is not JSON', `${b64url('{alg')}.${b64url({ sub: 'x' })}.sig`],
];

const timing: Timing = { sleep: async () => undefined, now: () => 0 };
const noRetry: RetryPolicy = { retries: 0, minMs: 0, factor: 1, maxMs: 0 };

describe("the publish path's reading of the job's ID token", () => {
  it.each(MALFORMED)('%s: NPM_OIDC_TOKEN_MALFORMED', (_what, token) => {
    let err: unknown;
    try {
      readPublisherClaims(token);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'NPM_OIDC_TOKEN_MALFORMED', hint: expect.stringContaining('ACTIONS_ID_TOKEN_REQUEST_URL') });
  });

  it('a 2 MB token is read, and its claims explained like any other', () => {
    const claims = readPublisherClaims(`${HEADER}.${b64url({ repository: 'acme/server', workflow_ref: `acme/server/.github/workflows/release.yml@refs/heads/${'x'.repeat(2_000_000)}` })}.sig`);
    expect(claims.repository).toBe('acme/server');
    const err = diagnoseRefusal({ name: 'pkg', registry: 'http://127.0.0.1:9/', refused: { status: 404, message: 'not found' }, claims, bindings: [{ package: 'pkg', repository: 'acme/other', workflow: 'release.yml' }], packageExists: true, now: new Date() });
    expect(err).toMatchObject({ code: 'NPM_OIDC_WRONG_REPOSITORY' });
  });

  it('claims of every wrong type give a coded explanation for every kind of refusal', () => {
    const odd = { repository: 5, workflow_ref: ['x'], environment: {}, runner_environment: 1, aud: 5, exp: 'soon', iss: null } as unknown as PublisherClaims;
    const reasons = [undefined, 'wrong-workflow', 'wrong-environment', 'wrong-repository', 'self-hosted-runner', 'no-trusted-publisher', 'package-not-found', 'expired-token', 'wrong-audience', 'wrong-issuer', 'invalid-token', 'missing-token', 'issuer-unreachable', '__proto__'];
    for (const status of [400, 401, 403, 404, 409, 500]) {
      for (const code of reasons) {
        for (const packageExists of [true, false]) {
          const err = diagnoseRefusal({ name: 'pkg', registry: 'http://127.0.0.1:9/', refused: { status, message: 'no', ...(code ? { code } : {}) }, claims: odd, bindings: [{ package: 'pkg', repository: 'acme/server', workflow: 'release.yml', environment: 'release' }], packageExists, now: new Date() });
          expect(err.code).toMatch(/^NPM_OIDC_[A-Z_]+$/);
          expect(err.message.length).toBeGreaterThan(0);
          expect(err.hint).toBeTruthy();
        }
      }
    }
  });

  describe('against a token service that answers junk', () => {
    let tokens: LabService;
    let registry: LabService;
    beforeAll(async () => {
      tokens = new LabService({ name: 'token-junk' });
      registry = new LabService({ name: 'registry-untouched' });
      await tokens.start(0);
      await registry.start(0);
    });
    afterAll(async () => {
      await tokens?.stop();
      await registry?.stop();
    });
    const env = (): NodeJS.ProcessEnv => ({ GITHUB_ACTIONS: 'true', ACTIONS_ID_TOKEN_REQUEST_URL: `${tokens.url}/token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-token' });

    it.each(['not json', '{"value":5}', '{"value":""}', '[]', 'null', '{"count":1}'])('an answer %j is NPM_OIDC_TOKEN_REFUSED', async (body) => {
      tokens.chaos.add({ route: '^/token$', count: 1, fault: { kind: 'status', status: 200, body } });
      expect(await caught(() => requestIdToken(env(), `${registry.url}/`, timing, noRetry))).toMatchObject({ code: 'NPM_OIDC_TOKEN_REFUSED' });
    });

    it.each(MALFORMED.filter(([, t]) => t !== ''))('an ID token with %s stops the preflight before the registry is asked anything', async (_what, token) => {
      tokens.chaos.add({ route: '^/token$', count: 1, fault: { kind: 'status', status: 200, body: JSON.stringify({ value: token }) } });
      const before = registry.log.length;
      const err = await caught(() => preflightExchange({ env: env(), registry: `${registry.url}/`, name: 'pkg', bindings: [], packageExists: true, now: new Date(), timing, retry: noRetry }));
      expect(err).toMatchObject({ code: 'NPM_OIDC_TOKEN_MALFORMED' });
      expect(registry.log.length).toBe(before);
    });
  });
});

describe("the lab's Fulcio and registry exchange", () => {
  let oidc: OidcService;
  let sigstore: SigstoreLab;
  let registry: RegistryLab;

  beforeAll(async () => {
    oidc = new OidcService();
    await oidc.start();
    sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: oidc.jwksUri });
    registry = await startRegistry({ oidcIssuer: oidc.issuer, jwksUri: oidc.jwksUri, trustedPublishers: [{ package: 'lab-widget', repository: oidc.claims.repository, workflow: 'release.yml' }] });
  });
  afterAll(async () => {
    await registry?.stop();
    await sigstore?.stop();
    await oidc?.stop();
  });

  const issued = (): number => sigstore.fulcio.log.filter((r) => r.path === '/api/v2/signingCert' && r.status === 200).length;

  /** Asks for a certificate with a proof of possession over the token's subject (when it has one). */
  async function signingCert(token: string): Promise<{ status: number; message: string }> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let sub = 'x';
    try {
      sub = String(decodeJwt(token).sub ?? 'x');
    } catch {
      sub = 'x';
    }
    const res = await fetch(`${sigstore.urls.fulcio}/api/v2/signingCert`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        credentials: { oidcIdentityToken: token },
        publicKeyRequest: { publicKey: { algorithm: 'ECDSA', content: publicKey.export({ format: 'pem', type: 'spki' }).toString() }, proofOfPossession: signData('sha256', Buffer.from(sub), privateKey).toString('base64') },
      }),
    });
    const text = await res.text();
    return { status: res.status, message: text };
  }

  async function exchange(token: string): Promise<{ status: number; body: string }> {
    const res = await fetch(new URL('-/npm/v1/oidc/token/exchange/package/lab-widget', registry.url), { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.text() };
  }

  /** A token that says all the right things, unsigned (`alg: none`). */
  function unsigned(aud: string): string {
    const now = Math.floor(Date.now() / 1000);
    return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...oidc.claims, iss: oidc.issuer, sub: 'repo:x', aud, iat: now, nbf: now, exp: now + 300 })}.`;
  }

  it('Fulcio refuses malformed, unsigned, oddly typed and oversized tokens with 400 and a reason, and issues nothing', async () => {
    const before = issued();
    const cases: Array<[string, string, RegExp]> = [
      ...MALFORMED.filter(([, t]) => t !== '').map(([what, t]): [string, string, RegExp] => [what, t, /error processing the identity token/]),
      ['alg none', unsigned('sigstore'), /error processing the identity token/],
      ['a signed token whose job_workflow_ref is a number', await oidc.mint('sigstore', { claims: { job_workflow_ref: 5 as unknown as string } }), /missing job_workflow_ref claim/],
      ['a signed token whose sha is a list', await oidc.mint('sigstore', { claims: { sha: ['a'] as unknown as string } }), /missing sha claim/],
      ['a 700 kB token', `${HEADER}.${b64url({ iss: oidc.issuer, pad: 'x'.repeat(500_000) })}.sig`, /error processing the identity token/],
      ['a body over 1 MiB', `${HEADER}.${b64url({ pad: 'x'.repeat(1_200_000) })}.sig`, /invalid request body|request body over/],
    ];
    for (const [what, token, reason] of cases) {
      const r = await signingCert(token);
      expect(r.status, what).toBe(400);
      expect(r.message, what).toMatch(reason);
    }
    expect(issued()).toBe(before);
    // and it still issues to a good token
    expect((await signingCert(await oidc.mint('sigstore'))).status).toBe(200);
  });

  it('the registry exchange refuses malformed, unsigned, oddly typed and oversized ID tokens, and grants nothing', async () => {
    const cases: Array<[string, string]> = [
      ...MALFORMED.filter(([, t]) => t !== '' && !/\s/.test(t)),
      ['alg none', unsigned(registry.audience)],
      ['a signed token whose repository is a number', await oidc.mint(registry.audience, { claims: { repository: 5 as unknown as string } })],
      ['a signed token whose workflow_ref is an object', await oidc.mint(registry.audience, { claims: { workflow_ref: { a: 1 } as unknown as string } })],
    ];
    for (const [what, token] of cases) {
      const r = await exchange(token);
      expect(r.status, what).toBe(401);
      expect(r.body, what).not.toContain('"token"');
    }
    // a header far over what an HTTP server reads is refused by the server itself
    const huge = await exchange(`${HEADER}.${b64url({ pad: 'x'.repeat(64 * 1024) })}.sig`);
    expect(huge.status).toBe(431);
    expect(registry.exchanges.filter((e) => e.status === 201)).toEqual([]);
    // and a well-formed token is still judged on its merits (the package does not exist yet)
    expect((await exchange(await oidc.mint(registry.audience))).status).toBe(404);
  });
});
