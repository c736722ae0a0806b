import { decodeJwt, decodeProtectedHeader } from 'jose';
import { StepError } from '../../errors.js';
import type { Policy } from '../../policy.js';
import { escapeName, npmAudience, PUBLISH_RETRY, registryFetch, type RetryPolicy, type Timing, TransientError, withRetries } from './registry.js';

export type TrustedPublisher = NonNullable<Policy['trustedPublishers']>[number];

/** The claims of a GitHub Actions ID token that trusted publishing compares. */
export interface PublisherClaims {
  repository?: string;
  workflow_ref?: string;
  environment?: string;
  runner_environment?: string;
  aud?: string | string[];
  iss?: string;
  exp?: number;
}

/**
 * The job's ID token for the registry's audience, fetched as npm does: GET
 * ACTIONS_ID_TOKEN_REQUEST_URL with `audience=npm:<registry host>`, the request token as bearer.
 */
export async function requestIdToken(env: NodeJS.ProcessEnv, registry: string, timing: Timing, retry: RetryPolicy = PUBLISH_RETRY): Promise<string> {
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const token = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (env.GITHUB_ACTIONS !== 'true') {
    throw new StepError('NPM_OIDC_NOT_IN_ACTIONS', 'trusted publishing needs a GitHub Actions job (GITHUB_ACTIONS is not "true"): npm only exchanges an ID token for a publish token there', {
      hint: 'publish from the release workflow on GitHub; to rehearse on this machine, run against the lab (`mcp-release lab start`, then its export lines, or `mcp-release rehearse`)',
    });
  }
  if (!url || !token) {
    throw new StepError('NPM_OIDC_NO_PERMISSION', 'this job cannot get an ID token (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)', {
      hint: 'give the publishing job `permissions: id-token: write` (and `contents: read`) in the workflow; GitHub only sets these variables for jobs with that permission',
    });
  }
  const target = new URL(url);
  target.searchParams.append('audience', npmAudience(registry));
  return withRetries(
    retry,
    timing,
    async () => {
      const res = await registryFetch(target.href, { headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
      if (res.status >= 500) {
        await res.body?.cancel();
        throw new TransientError(`HTTP ${res.status}`, res.status);
      }
      const text = await res.text();
      if (!res.ok) {
        throw new StepError('NPM_OIDC_TOKEN_REFUSED', `GitHub's token service refused an ID token for ${npmAudience(registry)} (HTTP ${res.status}: ${text.slice(0, 200)})`, {
          hint: 'the job needs `permissions: id-token: write`; a request token from another job or an expired one is refused, so re-run the job',
        });
      }
      let value: unknown;
      try {
        value = (JSON.parse(text) as { value?: unknown }).value;
      } catch {
        value = undefined;
      }
      if (typeof value !== 'string' || value === '') {
        throw new StepError('NPM_OIDC_TOKEN_REFUSED', "GitHub's token service answered without an ID token", { hint: 'check ACTIONS_ID_TOKEN_REQUEST_URL: it must be the job\'s token endpoint' });
      }
      return value;
    },
    (last, attempts) =>
      new StepError('NPM_OIDC_TOKEN_UNAVAILABLE', `no ID token after ${attempts} attempts: ${last.message}`, {
        hint: "GitHub's token service is failing; nothing was published. Re-run the job (mcp-release resume continues where it stopped)",
      }),
  );
}

/** The claims of an ID token, read without verifying it (the registry verifies it). */
export function readPublisherClaims(idToken: string): PublisherClaims {
  try {
    // the header too: a token whose header is not a JWS header is not sent to the registry at all
    decodeProtectedHeader(idToken);
    return decodeJwt(idToken) as PublisherClaims;
  } catch (err) {
    throw new StepError('NPM_OIDC_TOKEN_MALFORMED', `the ID token is not a JWT: ${(err as Error).message}`, {
      hint: 'check ACTIONS_ID_TOKEN_REQUEST_URL: it must be the job\'s token endpoint',
      cause: err,
    });
  }
}

/** The workflow file named by a `workflow_ref` claim (`owner/repo/.github/workflows/<file>@<ref>`). */
export function workflowFileOf(workflowRef: string | undefined): string | undefined {
  return workflowRef ? /^[^/]+\/[^/]+\/\.github\/workflows\/([^/@]+)@.+$/.exec(workflowRef)?.[1] : undefined;
}

/** The exchange URL npm posts to. npm resolves it from the registry's origin, whatever the registry's path. */
export function exchangeUrl(registry: string, name: string): string {
  return new URL(`/-/npm/v1/oidc/token/exchange/package/${escapeName(name)}`, registry).href;
}

/** Why the registry refused an exchange, as far as the answer and the token's claims tell. */
export type RefusalCause =
  | 'wrong-workflow'
  | 'wrong-environment'
  | 'wrong-repository'
  | 'self-hosted-runner'
  | 'no-trusted-publisher'
  | 'package-not-found'
  | 'expired-token'
  | 'wrong-audience'
  | 'invalid-token'
  | 'binding-differs'
  | 'unknown';

export interface RefusedExchange {
  status: number;
  /** The registry's message and, when it sends one, its reason code. */
  message: string;
  code?: string;
}

export interface DiagnoseInput {
  name: string;
  registry: string;
  refused: RefusedExchange;
  claims: PublisherClaims;
  /** The policy's trusted publishers (what the registry is expected to hold). */
  bindings: readonly TrustedPublisher[];
  /** Whether the registry has the package at all (from its packument). */
  packageExists: boolean;
  /** The wall-clock time, for telling an expired token. */
  now: Date;
}

const REGISTRY_REASONS = new Set<string>(['wrong-workflow', 'wrong-environment', 'wrong-repository', 'self-hosted-runner', 'no-trusted-publisher', 'package-not-found', 'expired-token', 'wrong-audience', 'wrong-issuer', 'invalid-token', 'missing-token', 'issuer-unreachable']);

function claimsDiff(claims: PublisherClaims, binding: TrustedPublisher): RefusalCause | undefined {
  if (claims.repository !== binding.repository) return 'wrong-repository';
  if (workflowFileOf(claims.workflow_ref) !== binding.workflow) return 'wrong-workflow';
  if (binding.environment !== undefined && claims.environment !== binding.environment) return 'wrong-environment';
  if (claims.runner_environment === 'self-hosted') return 'self-hosted-runner';
  return undefined;
}

/**
 * Names the cause of a refused exchange. The registry's own reason code is taken when it sends
 * one; otherwise the cause is worked out from the answer's status and message, the package's
 * existence and the token's claims compared with the policy's trusted publishers.
 */
export function refusalCause(input: Omit<DiagnoseInput, 'registry'>): { cause: RefusalCause; binding?: TrustedPublisher } {
  const { refused, claims, name } = input;
  const bindings = input.bindings.filter((b) => b.package === name);
  const firstDiff = (): { cause: RefusalCause; binding?: TrustedPublisher } => {
    for (const b of bindings) if (!claimsDiff(claims, b)) return { cause: 'binding-differs', binding: b };
    const b = bindings[0];
    return b ? { cause: claimsDiff(claims, b) as RefusalCause, binding: b } : { cause: 'no-trusted-publisher' };
  };
  const code = refused.code && REGISTRY_REASONS.has(refused.code) ? refused.code : undefined;
  if (code) {
    if (code === 'wrong-issuer' || code === 'missing-token' || code === 'issuer-unreachable') return { cause: 'invalid-token' };
    const cause = code as RefusalCause;
    const binding = bindings.find((b) => claimsDiff(claims, b) === cause) ?? bindings[0];
    return binding ? { cause, binding } : { cause };
  }
  if (refused.status === 401 || refused.status === 403) {
    if (typeof claims.exp === 'number' && claims.exp * 1000 <= input.now.getTime()) return { cause: 'expired-token' };
    if (/expired/i.test(refused.message)) return { cause: 'expired-token' };
    if (/audience/i.test(refused.message)) return { cause: 'wrong-audience' };
    return { cause: 'invalid-token' };
  }
  if (refused.status === 404) {
    if (!input.packageExists) return { cause: 'package-not-found' };
    return firstDiff();
  }
  return { cause: 'unknown' };
}

const CODES: Record<RefusalCause, string> = {
  'wrong-workflow': 'NPM_OIDC_WRONG_WORKFLOW',
  'wrong-environment': 'NPM_OIDC_WRONG_ENVIRONMENT',
  'wrong-repository': 'NPM_OIDC_WRONG_REPOSITORY',
  'self-hosted-runner': 'NPM_OIDC_SELF_HOSTED_RUNNER',
  'no-trusted-publisher': 'NPM_OIDC_NO_TRUSTED_PUBLISHER',
  'package-not-found': 'NPM_OIDC_PACKAGE_NOT_FOUND',
  'expired-token': 'NPM_OIDC_TOKEN_EXPIRED',
  'wrong-audience': 'NPM_OIDC_WRONG_AUDIENCE',
  'invalid-token': 'NPM_OIDC_TOKEN_INVALID',
  'binding-differs': 'NPM_OIDC_BINDING_DIFFERS',
  unknown: 'NPM_OIDC_EXCHANGE_REFUSED',
};

const POLICY = 'trustedPublishers in policies/release-policy.yaml';
const REGISTRY_SETTING = 'the package\'s "Trusted publisher" settings on the registry';

/** The refused exchange as a coded error: what the registry expects, what the token says, and the fix. */
export function diagnoseRefusal(input: DiagnoseInput): StepError {
  const { name, claims, refused } = input;
  const { cause, binding } = refusalCause(input);
  const file = workflowFileOf(claims.workflow_ref);
  const had = `the ID token is from repository ${claims.repository ?? '(none)'}, workflow ${file ?? claims.workflow_ref ?? '(none)'}, ${claims.environment ? `environment ${claims.environment}` : 'no environment'}`;
  const expects = binding ? `the trusted publisher of ${name} is repository ${binding.repository}, workflow ${binding.workflow}${binding.environment ? `, environment ${binding.environment}` : ''}` : '';
  const head = `the registry refused to exchange this job's ID token for a publish token for ${name}`;
  const details = [`registry answer: HTTP ${refused.status} ${refused.message}`, `token claims: repository=${claims.repository ?? ''} workflow_ref=${claims.workflow_ref ?? ''} environment=${claims.environment ?? ''}`];
  let message: string;
  let hint: string;
  switch (cause) {
    case 'wrong-workflow':
      message = `${head}: wrong workflow file (${expects}; ${had})`;
      hint = binding
        ? `publish from .github/workflows/${binding.workflow}; if ${file ?? 'this workflow'} is the right one, change the workflow file in ${REGISTRY_SETTING} and in ${POLICY} to ${file ?? 'it'}`
        : `publish from the workflow named in ${REGISTRY_SETTING}`;
      break;
    case 'wrong-environment':
      message = `${head}: wrong GitHub environment (${expects}; ${had})`;
      hint = binding?.environment
        ? `run the publishing job in the environment (jobs.<job>.environment: ${binding.environment}); or change the environment in ${REGISTRY_SETTING} and in ${POLICY}`
        : `run the publishing job in the environment named in ${REGISTRY_SETTING}`;
      break;
    case 'wrong-repository':
      message = `${head}: wrong repository (${expects}; ${had})`;
      hint = binding
        ? `publish from ${binding.repository} (a fork or a copy of the workflow cannot publish); if the repository moved, update ${REGISTRY_SETTING} and ${POLICY}`
        : `publish from the repository named in ${REGISTRY_SETTING}`;
      break;
    case 'self-hosted-runner':
      message = `${head}: the job ran on a self-hosted runner; trusted publishing accepts GitHub-hosted runners only`;
      hint = 'run the publishing job on a GitHub-hosted runner (runs-on: ubuntu-latest)';
      break;
    case 'no-trusted-publisher':
      message = `${head}: ${name} has no trusted publisher${input.bindings.some((b) => b.package === name) ? ' on the registry' : ' (none on the registry, none in the policy)'}; ${had}`;
      hint = `add a trusted publisher to ${name} on the registry (package settings → Trusted publisher: repository ${claims.repository ?? 'owner/repo'}, workflow ${file ?? 'release.yml'}${claims.environment ? `, environment ${claims.environment}` : ''}) and the same binding to ${POLICY}`;
      break;
    case 'package-not-found':
      message = `${head}: ${name} does not exist on the registry yet, and trusted publishing cannot create a package`;
      hint = `bootstrap the package once: publish its first version by hand with a short-lived granular token (\`npm publish --access public\` from the package folder), then add the trusted publisher (repository ${claims.repository ?? 'owner/repo'}, workflow ${file ?? 'release.yml'}${claims.environment ? `, environment ${claims.environment}` : ''}) and revoke the token; later releases publish through OIDC`;
      break;
    case 'expired-token':
      message = `${head}: the ID token is expired${typeof claims.exp === 'number' ? ` (it expired at ${new Date(claims.exp * 1000).toISOString()})` : ''}`;
      hint = 'ID tokens live for minutes: re-run the job (a new token is requested at the start of the publish); if it keeps happening, check the runner\'s clock';
      break;
    case 'wrong-audience':
      message = `${head}: the ID token's audience ${JSON.stringify(claims.aud ?? null)} is not the one this registry expects (${npmAudience(input.registry)} requested)`;
      hint = 'MCP_RELEASE_NPM_REGISTRY must be the registry the trusted publisher is configured on, by the host name the registry knows itself by';
      break;
    case 'invalid-token':
      message = `${head}: the registry does not accept the ID token (${refused.message})`;
      hint = 'the token was not issued by GitHub Actions for this job, or the registry cannot check it; re-run the job, and publish only from GitHub-hosted Actions (or the lab, with its token service)';
      break;
    case 'binding-differs':
      message = `${head}, although the token matches the policy's trusted publisher (${expects}): the registry's trusted publisher differs from the policy`;
      hint = `make ${REGISTRY_SETTING} match ${POLICY} (repository, workflow file, environment)`;
      break;
    default:
      message = `${head} (HTTP ${refused.status}: ${refused.message})`;
      hint = `check ${REGISTRY_SETTING} against ${POLICY}, then re-run`;
  }
  return new StepError(CODES[cause], message, { hint, details });
}

export interface ExchangeOptions {
  registry: string;
  name: string;
  idToken: string;
}

/** The registry's answer to an exchange: a publish token, or the refusal. */
export type ExchangeResult = { token: string } | { refused: RefusedExchange };

/** POSTs the ID token to the registry's exchange endpoint; 5xx and network failures throw TransientError. */
export async function exchangeIdToken(options: ExchangeOptions): Promise<ExchangeResult> {
  const url = exchangeUrl(options.registry, options.name);
  const res = await registryFetch(url, { method: 'POST', headers: { accept: 'application/json', authorization: `Bearer ${options.idToken}` } });
  if (res.status >= 500) {
    await res.body?.cancel();
    throw new TransientError(`POST ${url}: HTTP ${res.status}`, res.status);
  }
  const text = await res.text();
  let body: { token?: unknown; message?: unknown; error?: unknown; code?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = {};
  }
  if (res.ok && typeof body.token === 'string' && body.token) return { token: body.token };
  const message = typeof body.message === 'string' ? body.message : typeof body.error === 'string' ? body.error : text.slice(0, 200) || res.statusText;
  return { refused: { status: res.status, message: res.ok ? `answered ${res.status} without a token` : message, ...(typeof body.code === 'string' ? { code: body.code } : {}) } };
}

export interface PreflightOptions {
  env: NodeJS.ProcessEnv;
  registry: string;
  name: string;
  bindings: readonly TrustedPublisher[];
  packageExists: boolean;
  now: Date;
  timing: Timing;
  retry?: RetryPolicy;
}

/**
 * The exchange npm will do, done first by the toolkit: npm only says ENEEDAUTH when it is refused,
 * while this names the cause. Returns the exchanged token (held in memory only, never logged).
 */
export async function preflightExchange(options: PreflightOptions): Promise<{ token: string; claims: PublisherClaims }> {
  const retry = options.retry ?? PUBLISH_RETRY;
  const idToken = await requestIdToken(options.env, options.registry, options.timing, retry);
  const claims = readPublisherClaims(idToken);
  const result = await withRetries(
    retry,
    options.timing,
    () => exchangeIdToken({ registry: options.registry, name: options.name, idToken }),
    (last, attempts) =>
      new StepError('NPM_OIDC_EXCHANGE_UNAVAILABLE', `the registry's token exchange for ${options.name} failed ${attempts} times: ${last.message}`, {
        hint: 'the registry is failing; nothing was published. Re-run the release (mcp-release resume) once it answers',
      }),
  );
  if ('refused' in result) {
    throw diagnoseRefusal({ name: options.name, registry: options.registry, refused: result.refused, claims, bindings: options.bindings, packageExists: options.packageExists, now: options.now });
  }
  return { token: result.token, claims };
}
