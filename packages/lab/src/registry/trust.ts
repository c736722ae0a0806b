import { decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { LabError } from '../errors.js';
import { isValidPackageName } from './names.js';

/** The one workflow allowed to publish a package through OIDC (the policy's `trustedPublishers`). */
export interface TrustedPublisher {
  package: string;
  /** `owner/repo`, compared exactly (case-sensitive), as npm does. */
  repository: string;
  /** The workflow file name only, e.g. `release.yml`. */
  workflow: string;
  /** When set, the job must run in this GitHub environment. */
  environment?: string;
}

/** Why an exchange was refused; each cause has its own code and message. */
export type RefusalReason =
  | 'missing-token'
  | 'invalid-token'
  | 'expired-token'
  | 'wrong-audience'
  | 'wrong-issuer'
  | 'issuer-unreachable'
  | 'invalid-package-name'
  | 'no-trusted-publisher'
  | 'package-not-found'
  | 'wrong-repository'
  | 'wrong-workflow'
  | 'wrong-environment'
  | 'self-hosted-runner';

export interface Refusal {
  status: number;
  reason: RefusalReason;
  message: string;
}

/** The prefix the public registry puts on every refused exchange; the lab adds the cause after it. */
export const EXCHANGE_ERROR = 'OIDC token exchange error';

function refuse(status: number, reason: RefusalReason, detail: string): Refusal {
  const kind = status === 404 ? 'package not found' : status === 401 ? 'invalid ID token' : status === 400 ? 'bad request' : 'registry error';
  return { status, reason, message: `${EXCHANGE_ERROR} - ${kind} (${detail})` };
}

const WORKFLOW_FILE_RE = /^[A-Za-z0-9._-]+\.ya?ml$/;
const REPOSITORY_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** Checks bindings as read from the policy; throws LabError naming the bad entry. */
export function validateTrustedPublishers(list: readonly TrustedPublisher[]): TrustedPublisher[] {
  if (!Array.isArray(list)) {
    throw new LabError('LAB_REGISTRY_BINDINGS', 'trusted publishers must be a list', { hint: 'pass the policy\'s trustedPublishers array, e.g. [{"package":"vmaf-mcp","repository":"mcp-release/vmaf-mcp","workflow":"release.yml"}]' });
  }
  const problems: string[] = [];
  const out: TrustedPublisher[] = [];
  list.forEach((entry, i) => {
    const where = `trustedPublishers[${i}]`;
    if (!entry || typeof entry !== 'object') {
      problems.push(`${where}: not an object`);
      return;
    }
    const { package: name, repository, workflow, environment } = entry;
    if (typeof name !== 'string' || !isValidPackageName(name)) problems.push(`${where}.package: ${JSON.stringify(name)} is not a valid npm package name`);
    if (typeof repository !== 'string' || !REPOSITORY_RE.test(repository)) problems.push(`${where}.repository: ${JSON.stringify(repository)} is not owner/repo`);
    if (typeof workflow !== 'string' || !WORKFLOW_FILE_RE.test(workflow)) problems.push(`${where}.workflow: ${JSON.stringify(workflow)} is not a workflow file name such as release.yml (no folder)`);
    if (environment !== undefined && (typeof environment !== 'string' || environment.length === 0)) problems.push(`${where}.environment: must be a non-empty string when given`);
    out.push({ package: name, repository, workflow, ...(environment !== undefined ? { environment } : {}) });
  });
  if (problems.length) {
    throw new LabError('LAB_REGISTRY_BINDINGS', `${problems.length} trusted publisher binding(s) are invalid`, { details: problems, hint: 'fix trustedPublishers in policies/release-policy.yaml' });
  }
  return out;
}

/** The GitHub claims the exchange reads. */
export interface IdTokenClaims extends JWTPayload {
  repository: string;
  workflow_ref: string;
  environment?: string;
  runner_environment?: string;
}

export interface VerifyOptions {
  issuer: string;
  /** The audiences accepted, e.g. `['npm:127.0.0.1']`. */
  audiences: string[];
  jwks: JWTVerifyGetKey;
}

function describeAudience(token: string): string {
  try {
    const { aud } = decodeJwt(token);
    return JSON.stringify(aud ?? null);
  } catch {
    return 'unreadable';
  }
}

/** Verifies an Actions ID token as the registry does: signature (JWKS), issuer, audience, expiry. */
export async function verifyIdToken(token: string, options: VerifyOptions): Promise<{ claims: IdTokenClaims } | { refusal: Refusal }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, options.jwks, { issuer: options.issuer, audience: options.audiences, algorithms: ['RS256'] }));
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_JWT_EXPIRED') {
      const exp = (err as { payload?: JWTPayload }).payload?.exp;
      return { refusal: refuse(401, 'expired-token', `the ID token expired${typeof exp === 'number' ? ` at ${new Date(exp * 1000).toISOString()}` : ''}`) };
    }
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
      const claim = (err as { claim?: unknown }).claim;
      if (claim === 'aud') return { refusal: refuse(401, 'wrong-audience', `the ID token's audience ${describeAudience(token)} is not ${options.audiences.map((a) => JSON.stringify(a)).join(' or ')}`) };
      if (claim === 'iss') return { refusal: refuse(401, 'wrong-issuer', `the ID token was not issued by ${options.issuer}`) };
      return { refusal: refuse(401, 'invalid-token', `claim ${String(claim)}: ${(err as Error).message}`) };
    }
    const unreachable = code === undefined || code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || code === 'ERR_JOSE_GENERIC';
    if (typeof code === 'string' && !unreachable) {
      return { refusal: refuse(401, 'invalid-token', `the ID token does not verify: ${(err as Error).message}`) };
    }
    return { refusal: refuse(502, 'issuer-unreachable', `the issuer's signing keys could not be fetched: ${(err as Error).message}`) };
  }
  for (const claim of ['repository', 'workflow_ref'] as const) {
    if (typeof payload[claim] !== 'string' || payload[claim] === '') {
      return { refusal: refuse(401, 'invalid-token', `the ID token has no ${claim} claim`) };
    }
  }
  return { claims: payload as IdTokenClaims };
}

/** The workflow file of a `workflow_ref` claim: `owner/repo/.github/workflows/<file>@<ref>`. */
export function workflowFile(workflowRef: string): string | undefined {
  return /^[^/]+\/[^/]+\/\.github\/workflows\/([^/@]+)@.+$/.exec(workflowRef)?.[1];
}

/**
 * Finds the binding these claims satisfy. Compared exactly, as npm does: repository, the
 * workflow file of `workflow_ref`, and the environment when the binding names one. With several
 * bindings for a package any one may match; the refusal names the first binding's mismatch.
 */
export function matchTrustedPublisher(name: string, claims: IdTokenClaims, bindings: readonly TrustedPublisher[]): { binding: TrustedPublisher } | { refusal: Refusal } {
  const candidates = bindings.filter((b) => b.package === name);
  if (candidates.length === 0) return { refusal: refuse(404, 'no-trusted-publisher', `no trusted publisher is configured for ${JSON.stringify(name)}`) };
  const file = workflowFile(claims.workflow_ref);
  let first: Refusal | undefined;
  for (const binding of candidates) {
    let refusal: Refusal | undefined;
    if (claims.repository !== binding.repository) {
      refusal = refuse(404, 'wrong-repository', `the trusted publisher of ${JSON.stringify(name)} is repository ${binding.repository}, the ID token is from ${claims.repository}`);
    } else if (file !== binding.workflow) {
      refusal = refuse(404, 'wrong-workflow', `the trusted publisher of ${JSON.stringify(name)} is workflow ${binding.workflow}, the ID token is from ${file ?? `an unreadable workflow_ref ${JSON.stringify(claims.workflow_ref)}`}`);
    } else if (binding.environment !== undefined && claims.environment !== binding.environment) {
      refusal = refuse(404, 'wrong-environment', `the trusted publisher of ${JSON.stringify(name)} requires environment ${binding.environment}, the ID token has ${claims.environment === undefined ? 'no environment' : `environment ${claims.environment}`}`);
    } else if (claims.runner_environment === 'self-hosted') {
      refusal = refuse(404, 'self-hosted-runner', 'trusted publishing accepts GitHub-hosted runners only; the ID token is from a self-hosted runner');
    }
    if (!refusal) return { binding };
    first ??= refusal;
  }
  return { refusal: first as Refusal };
}

/** The refusal for a package that has a binding but no published version yet. */
export function packageNotFound(name: string): Refusal {
  return refuse(404, 'package-not-found', `${JSON.stringify(name)} does not exist yet; trusted publishing cannot create a package, publish its first version with a token`);
}

export function missingToken(): Refusal {
  return refuse(401, 'missing-token', 'no ID token: send it as the bearer token');
}

export function invalidName(name: string): Refusal {
  return refuse(400, 'invalid-package-name', `${JSON.stringify(name)} is not a valid package name`);
}
