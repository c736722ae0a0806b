import { decodeJwt } from 'jose';
import { StepError } from '../errors.js';
import { githubIdentity } from '../sigstore/signing.js';

/**
 * The claims of a GitHub Actions ID token that describe the run. Only the string claims this
 * toolkit reads are typed; the token is not verified here (Fulcio verifies it when it certifies
 * the signing key, and the certificate carries the same claims).
 */
export interface JobClaims {
  iss: string;
  repository: string;
  ref: string;
  sha: string;
  workflow_ref: string;
  job_workflow_ref: string;
  run_id: string;
  run_attempt: string;
  event_name?: string;
  repository_id?: string;
  repository_owner?: string;
  repository_owner_id?: string;
  runner_environment?: string;
  environment?: string;
}

/** Claims without which neither the predicate nor the signing identity can be stated. */
export const REQUIRED_CLAIMS = ['iss', 'repository', 'ref', 'sha', 'workflow_ref', 'job_workflow_ref', 'run_id', 'run_attempt'] as const;
const OPTIONAL_CLAIMS = ['event_name', 'repository_id', 'repository_owner', 'repository_owner_id', 'runner_environment', 'environment'] as const;

/** Picks the claims this toolkit uses out of a decoded token payload, refusing a token without the required ones. */
export function jobClaimsFrom(payload: Record<string, unknown>): JobClaims {
  const str = (name: string): string | undefined => {
    const v = payload[name];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    return undefined;
  };
  const missing = REQUIRED_CLAIMS.filter((c) => str(c) === undefined);
  if (missing.length) {
    throw new StepError('OIDC_CLAIMS_MISSING', `the job's OIDC token has no ${missing.join(', ')} claim${missing.length > 1 ? 's' : ''}`, {
      hint: 'provenance needs a GitHub Actions ID token (or the lab token service); run this step inside the release workflow with `permissions: id-token: write`',
    });
  }
  const claims: Record<string, string> = {};
  for (const c of [...REQUIRED_CLAIMS, ...OPTIONAL_CLAIMS]) {
    const v = str(c);
    if (v !== undefined) claims[c] = v;
  }
  return claims as unknown as JobClaims;
}

/** Decodes a compact JWT's payload (no signature check) into the job's claims. */
export function decodeJobClaims(token: string): JobClaims {
  let payload: Record<string, unknown>;
  try {
    payload = decodeJwt(token) as Record<string, unknown>;
  } catch (err) {
    throw new StepError('OIDC_TOKEN_MALFORMED', `the OIDC token service answered with something that is not a JWT: ${(err as Error).message}`, {
      hint: 'check ACTIONS_ID_TOKEN_REQUEST_URL: it must be the job\'s token endpoint',
      cause: err,
    });
  }
  return jobClaimsFrom(payload);
}

/** Fetches the job's OIDC token for audience `sigstore` (the token Fulcio will see) and reads its claims. */
export async function readJobClaims(env: NodeJS.ProcessEnv): Promise<JobClaims> {
  const token = await githubIdentity(env, 'sigstore').getToken();
  return decodeJobClaims(token);
}

/** `https://github.com` unless the job runs on another GitHub server. */
export function serverUrlFromEnv(env: NodeJS.ProcessEnv): string {
  return (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
}

/** The identity Fulcio certifies for this job: the SAN (the job's workflow at its ref) and the token issuer. */
export function signingIdentity(claims: Pick<JobClaims, 'iss' | 'job_workflow_ref'>, serverUrl = 'https://github.com'): { san: string; issuer: string } {
  return { san: `${serverUrl}/${claims.job_workflow_ref}`, issuer: claims.iss };
}
