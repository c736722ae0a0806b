import { readFile } from 'node:fs/promises';
import { Octokit } from '@octokit/rest';
import { isCodedError } from '@mcp-release/manifest';
import { StepError } from '../../errors.js';
import type { Policy } from '../../policy.js';
import { extraCaNotLoaded, fetchTrusting } from './fetch.js';

/** What the release functions report while they work. */
export interface ReleaseProgress {
  action: 'uploading' | 'uploaded' | 'skipped' | 'replaced' | 'deleted' | 'downloaded' | 'retrying';
  /** The asset's name (empty for a call that is not about one asset). */
  name: string;
  /** One line for a log. */
  message: string;
}

export interface GithubRetryPolicy {
  /** Attempts after the first one, for 5xx answers and network failures (never 4xx); default 3. */
  retries: number;
  /** Wait before the first retry, doubled for each further one; default 1000 ms. */
  delayMs: number;
  sleep: (ms: number) => Promise<void>;
}

export interface GithubReleaseClient {
  octokit: Octokit;
  /** `owner/name`. */
  repository: string;
  owner: string;
  repo: string;
  retry: GithubRetryPolicy;
  /** Limit on one API call (not on an upload or a download); default 60 s. */
  timeoutMs: number;
  onProgress: (event: ReleaseProgress) => void;
}

export interface GithubClientOptions {
  repository: string;
  token: string;
  /** The REST API base URL (GITHUB_API_URL); default: octokit's (GitHub's public API). */
  baseUrl?: string;
  /** A fetch for octokit, e.g. one that trusts an extra CA (see fetchTrusting). */
  fetch?: typeof fetch;
  retry?: Partial<GithubRetryPolicy>;
  timeoutMs?: number;
  onProgress?: (event: ReleaseProgress) => void;
}

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const REPOSITORY_RE = /^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9._-]{1,100})$/;

export const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function createGithubReleaseClient(options: GithubClientOptions): GithubReleaseClient {
  const m = REPOSITORY_RE.exec(options.repository);
  if (!m || m[2] === '.' || m[2] === '..') {
    throw new StepError('GITHUB_REPOSITORY_INVALID', `${JSON.stringify(options.repository)} is not a GitHub repository (owner/name)`, {
      hint: 'set release.repository in the release policy to owner/name (or signer.repository, or GITHUB_REPOSITORY)',
    });
  }
  const octokit = new Octokit({
    auth: options.token,
    log: quiet,
    ...(options.baseUrl ? { baseUrl: options.baseUrl.replace(/\/+$/, '') } : {}),
    ...(options.fetch ? { request: { fetch: options.fetch } } : {}),
  });
  const timeoutMs = options.timeoutMs ?? 60_000;
  // Every call gets a time limit unless it streams a file (an upload or a download: those take as
  // long as the file needs) or brings its own signal. A hook, because octokit.paginate passes only
  // method, URL and headers to the calls it makes; the hook changes the options in place, because
  // every hook of a request is handed the same options object.
  octokit.hook.before('request', (endpoint) => {
    const own = endpoint.request as { signal?: AbortSignal; timeLimit?: boolean } | undefined;
    if (own?.signal || own?.timeLimit === false) return;
    endpoint.request = { ...own, signal: AbortSignal.timeout(timeoutMs) };
  });
  return {
    octokit,
    repository: options.repository,
    owner: m[1] as string,
    repo: m[2] as string,
    retry: { retries: 3, delayMs: 1000, sleep: defaultSleep, ...options.retry },
    timeoutMs,
    onProgress: options.onProgress ?? (() => undefined),
  };
}

/** The repository that hosts the release: release.repository, else signer.repository, else GITHUB_REPOSITORY. */
export function releaseRepository(policy: Policy, env: NodeJS.ProcessEnv): string {
  const repository = policy.release?.repository ?? policy.signer?.repository ?? env.GITHUB_REPOSITORY;
  if (!repository) {
    throw new StepError('GITHUB_REPOSITORY_MISSING', 'no GitHub repository to release to', {
      hint: 'set release.repository (owner/name) in the release policy; on GitHub Actions GITHUB_REPOSITORY is used when the policy names none',
    });
  }
  return repository;
}

/**
 * A client from the job's environment: GITHUB_API_URL and GITHUB_TOKEN. When the environment
 * names an extra CA (NODE_EXTRA_CA_CERTS) that this process did not load at start-up, as with the
 * lab's GitHub over TLS in a rehearsal, requests go through a fetch that trusts it.
 */
export async function githubReleaseClientFromEnv(env: NodeJS.ProcessEnv, repository: string, extra: Pick<GithubClientOptions, 'retry' | 'timeoutMs' | 'onProgress'> = {}): Promise<GithubReleaseClient> {
  const token = env.GITHUB_TOKEN || env.GH_TOKEN;
  if (!token) {
    throw new StepError('GITHUB_TOKEN_MISSING', 'GITHUB_TOKEN is not set, so the GitHub release cannot be made', {
      hint: 'pass the job token: `env: GITHUB_TOKEN: ${{ github.token }}` with `permissions: contents: write`; against the lab, use the export lines of `mcp-release lab start`',
    });
  }
  let fetchImpl: typeof fetch | undefined;
  const caFile = extraCaNotLoaded(env);
  if (caFile) {
    let pem: string;
    try {
      pem = await readFile(caFile, 'utf8');
    } catch (err) {
      throw new StepError('GITHUB_CA_UNREADABLE', `cannot read the CA certificate file NODE_EXTRA_CA_CERTS=${caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        cause: err,
        hint: 'point NODE_EXTRA_CA_CERTS at the PEM file of the CA that signed the GitHub server certificate (the lab prints it), or unset it',
      });
    }
    fetchImpl = fetchTrusting(pem);
  }
  return createGithubReleaseClient({ repository, token, ...(env.GITHUB_API_URL ? { baseUrl: env.GITHUB_API_URL } : {}), ...(fetchImpl ? { fetch: fetchImpl } : {}), ...extra });
}

/** The HTTP status of an octokit failure (500 for network failures, which octokit reports so). */
export function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_STREAM_PREMATURE_CLOSE']);

/** A failure worth another attempt: a 5xx answer, or the connection failing. Never a 4xx, never our own coded errors. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  if (isCodedError(err)) return false;
  const status = statusOf(err);
  if (status !== undefined) return status >= 500;
  if (tlsFailure(err)) return false;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_'))) return true;
    const name = (e as { name?: unknown }).name;
    if (name === 'AbortError' || name === 'TimeoutError') return true;
    if (e instanceof TypeError && /fetch failed|terminated/i.test(e.message)) return true;
  }
  return false;
}

/** The server's certificate was not trusted: no retry cures that. */
export function tlsFailure(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code)) return code;
  }
  return undefined;
}

/** A failure of ours that another attempt may cure (a transfer that arrived damaged). */
export class TransientError extends Error {}

/** Runs `fn`, again after a growing pause when it fails transiently, at most `retry.retries` more times. */
export async function withRetry<T>(client: GithubReleaseClient, what: string, fn: (attempt: number) => Promise<T>, name = ''): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isTransient(err) || attempt >= client.retry.retries) throw err;
      const wait = client.retry.delayMs * 2 ** attempt;
      client.onProgress({ action: 'retrying', name, message: `${what} failed (${describe(err)}); retry ${attempt + 1}/${client.retry.retries} in ${wait} ms` });
      await client.retry.sleep(wait);
    }
  }
}

/** `HTTP <status>` for an answer; the first line of the message for a failure without one (the network). */
function describe(err: unknown): string {
  const status = statusOf(err);
  const answered = (err as { response?: unknown }).response !== undefined;
  const message = (err as Error).message ?? String(err);
  return status !== undefined && answered ? `HTTP ${status}` : message.split('\n')[0] ?? message;
}

/** Request options of a call that streams a file: no time limit on the whole call. */
export const STREAMING = { timeLimit: false } as const;

/** A failed GitHub API call as a coded error: what was asked, GitHub's answer, and the fix for that answer. */
export function githubApiError(what: string, err: unknown, client: Pick<GithubReleaseClient, 'repository'>): StepError {
  if (isCodedError(err)) return err as StepError;
  const status = statusOf(err);
  const data = (err as { response?: { data?: unknown } }).response?.data as { message?: string; errors?: unknown[] } | undefined;
  const details = Array.isArray(data?.errors) ? data.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))) : [];
  const answer = status && (err as { response?: unknown }).response !== undefined ? `HTTP ${status}${data?.message ? ` ${data.message}` : ''}` : describe(err);
  const tls = tlsFailure(err);
  const hint = tls
    ? `the server's TLS certificate is not trusted (${tls}): point NODE_EXTRA_CA_CERTS at the PEM of the CA that signed it (the lab prints it), or check GITHUB_API_URL`
    : status === 401
      ? 'the token was refused: check GITHUB_TOKEN (it may have expired)'
      : status === 403
        ? `the token may not write releases of ${client.repository}: give the job \`permissions: contents: write\``
        : status === 404
          ? `check the repository (${client.repository}, from release.repository in the policy) and that the token can see it`
          : status === 422
            ? 'GitHub refused the request as invalid (see the details); fix what they name and run again'
            : 'GitHub or the network failed after the retries; run the step again (it continues where it stopped)';
  return new StepError('GITHUB_API_FAILED', `could not ${what}: ${answer}`, { cause: err, hint, ...(details.length ? { details } : {}) });
}
