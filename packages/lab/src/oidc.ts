import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { exportJWK, exportPKCS8, generateKeyPair, importPKCS8, SignJWT, type JWK } from 'jose';
import { LabService, sendJson } from './harness.js';
import { persisted } from './state.js';

/** The claims GitHub puts into an Actions ID token (besides iss, sub, aud, iat, nbf, exp, jti). */
export interface GithubClaims {
  repository: string;
  repository_owner: string;
  repository_visibility: 'public' | 'private' | 'internal';
  ref: string;
  sha: string;
  workflow_ref: string;
  job_workflow_ref: string;
  environment?: string;
  run_id: string;
  run_attempt: string;
  event_name: string;
  runner_environment: 'github-hosted' | 'self-hosted';
  [claim: string]: string | undefined;
}

export const DEFAULT_CLAIMS: GithubClaims = {
  repository: 'mcp-release/vmaf-mcp',
  repository_owner: 'mcp-release',
  repository_visibility: 'private',
  ref: 'refs/heads/main',
  sha: '0000000000000000000000000000000000000000',
  workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/main',
  job_workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/main',
  environment: 'release',
  run_id: '1',
  run_attempt: '1',
  event_name: 'workflow_dispatch',
  runner_environment: 'github-hosted',
};

export interface MintOptions {
  /** Claims for this token only, over the service's current claims. */
  claims?: Partial<GithubClaims>;
  /** Seconds from now; negative makes an expired token. Default 300, as GitHub's tokens. */
  expiresIn?: number;
}

/**
 * GitHub Actions' OIDC token service: discovery, JWKS, and the token endpoint behind
 * ACTIONS_ID_TOKEN_REQUEST_URL (`?audience=`, bearer request token, `{value}` answer).
 * RS256 tokens with GitHub's claims, taken from the lab's configuration.
 */
export class OidcService {
  readonly service = new LabService({ name: 'oidc' });
  /** The bearer token a job presents (ACTIONS_ID_TOKEN_REQUEST_TOKEN). */
  readonly requestToken = randomBytes(24).toString('hex');
  claims: GithubClaims;
  private key!: Awaited<ReturnType<typeof importPKCS8>>;
  private jwk!: JWK;
  private readonly kid: string;
  private readonly issuerOverride: string | undefined;

  /**
   * `issuer` is the `iss` of the tokens; by default the service's own URL. The lab uses GitHub's
   * issuer string, so that what verifiers pin is what they pin for real releases (the JWKS is
   * always fetched from this service's `jwksUri`, never from the issuer string).
   */
  constructor(claims: Partial<GithubClaims> = {}, kid = 'lab-oidc-1', issuer?: string) {
    this.claims = { ...DEFAULT_CLAIMS, ...claims } as GithubClaims;
    this.kid = kid;
    this.issuerOverride = issuer;
    this.service.route('GET', '/.well-known/openid-configuration', (_req, res) =>
      sendJson(res, 200, {
        issuer: this.issuer,
        jwks_uri: this.jwksUri,
        subject_types_supported: ['public', 'pairwise'],
        response_types_supported: ['id_token'],
        claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', ...Object.keys(DEFAULT_CLAIMS)],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid'],
      }),
    );
    this.service.route('GET', '/.well-known/jwks', (_req, res) => sendJson(res, 200, { keys: [this.jwk] }));
    this.service.route('GET', '/token', async (req, res, _p, url) => {
      if (!this.authorized(req)) {
        sendJson(res, 401, { message: 'Bad credentials: the request token is missing or wrong' });
        return;
      }
      const audience = url.searchParams.get('audience') ?? `https://github.com/${this.claims.repository_owner}`;
      sendJson(res, 200, { count: 1, value: await this.mint(audience) });
    });
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.requestToken}`;
  }

  get issuer(): string {
    return this.issuerOverride ?? this.service.url;
  }

  get jwksUri(): string {
    return `${this.service.url}/.well-known/jwks`;
  }

  /** The URL jobs use: the query already has a `?`, clients append `&audience=`. */
  get requestUrl(): string {
    return `${this.service.url}/token?api-version=2.0`;
  }

  async start(port = 0, stateDir?: string): Promise<void> {
    const stored = await persisted(stateDir, 'oidc-rs256', async () => {
      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      return { pkcs8: await exportPKCS8(privateKey) };
    });
    this.key = await importPKCS8(stored.pkcs8, 'RS256', { extractable: true });
    const pub = await exportJWK(this.key);
    this.jwk = { kty: pub.kty, n: pub.n, e: pub.e, kid: this.kid, alg: 'RS256', use: 'sig' } as JWK;
    await this.service.start(port);
  }

  async stop(): Promise<void> {
    await this.service.stop();
  }

  /** Mints a token as the token endpoint would, for this audience. */
  async mint(audience: string, options: MintOptions = {}): Promise<string> {
    const claims = { ...this.claims, ...options.claims } as GithubClaims;
    const now = Math.floor(Date.now() / 1000);
    const sub = claims.environment ? `repo:${claims.repository}:environment:${claims.environment}` : `repo:${claims.repository}:ref:${claims.ref}`;
    const body: Record<string, string> = {};
    for (const [k, v] of Object.entries(claims)) if (v !== undefined) body[k] = v;
    return new SignJWT(body)
      .setProtectedHeader({ alg: 'RS256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(sub)
      .setAudience(audience)
      .setJti(randomUUID())
      .setIssuedAt(now - 5)
      .setNotBefore(now - 5)
      .setExpirationTime(now + (options.expiresIn ?? 300))
      .sign(this.key);
  }
}
