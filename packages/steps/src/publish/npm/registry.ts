import Ajv from 'ajv';
import semver from 'semver';
import { describeSchemaErrors, npmIntegrity } from '@mcp-release/manifest';
import type { Exec } from '@mcp-release/pipeline';
import { StepError } from '../../errors.js';

/**
 * Fills MCP_RELEASE_NPM_REGISTRY from npm's own configuration when it is unset, so that the
 * release publishes where npm itself would (npm's default registry unless configured otherwise).
 */
export async function withRegistry(deps: { exec: Exec; env: NodeJS.ProcessEnv }, cwd: string): Promise<NodeJS.ProcessEnv> {
  if (deps.env.MCP_RELEASE_NPM_REGISTRY) return deps.env;
  const r = await deps.exec('npm', ['config', 'get', 'registry'], { cwd, env: deps.env });
  const registry = r.stdout.trim().split('\n').pop()?.trim();
  if (r.exitCode !== 0 || !registry) {
    throw new StepError('NPM_REGISTRY_UNKNOWN', 'npm did not say which registry it publishes to (npm config get registry failed)', {
      details: r.stderr.split('\n').filter(Boolean).slice(-3),
      hint: 'set MCP_RELEASE_NPM_REGISTRY to the registry URL, or fix the npm configuration',
    });
  }
  return { ...deps.env, MCP_RELEASE_NPM_REGISTRY: registry };
}

/** How long one registry request may take before it counts as a network failure. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** The registry the release publishes to, as a URL with a trailing slash. */
export function registryFromEnv(env: NodeJS.ProcessEnv): string {
  const raw = env.MCP_RELEASE_NPM_REGISTRY;
  if (!raw) {
    throw new StepError('NPM_REGISTRY_UNKNOWN', 'no npm registry is set for the release', {
      hint: 'set MCP_RELEASE_NPM_REGISTRY to the registry URL (the publish steps fill it from `npm config get registry` when unset)',
    });
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new StepError('NPM_REGISTRY_INVALID', `MCP_RELEASE_NPM_REGISTRY ${JSON.stringify(raw)} is not a URL`, {
      hint: 'set MCP_RELEASE_NPM_REGISTRY to the registry URL (e.g. the lab registry printed by `mcp-release lab start`), or unset it to publish to npm\'s default registry',
      cause: err,
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new StepError('NPM_REGISTRY_INVALID', `MCP_RELEASE_NPM_REGISTRY ${JSON.stringify(raw)} is not an http(s) URL`, {
      hint: 'give the registry as http(s)://host[:port]/[path/]',
    });
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new StepError('NPM_REGISTRY_INVALID', 'MCP_RELEASE_NPM_REGISTRY must be a plain URL without credentials, query or fragment', {
      hint: 'trusted publishing needs no credentials in the registry URL; remove them',
    });
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.href;
}

/** The audience npm asks GitHub's token service for: `npm:` + the registry's host name (no port). */
export function npmAudience(registry: string): string {
  return `npm:${new URL(registry).hostname}`;
}

/** npm's key prefix for a registry's credentials (`//host[:port]/path/`). */
export function nerfDart(registry: string): string {
  const url = new URL(registry);
  return `//${url.host}${url.pathname}`;
}

/** The form npm puts a package name into registry paths: `@scope%2fname` for scoped names. */
export function escapeName(name: string): string {
  return name.startsWith('@') ? name.replace('/', '%2f') : name;
}

/** The dist-tag a version is published under: the prerelease tag for prereleases, else `latest`. */
export function distTagFor(version: string, prereleaseTag = 'next'): string {
  return semver.prerelease(version) ? prereleaseTag : 'latest';
}

/** A version as the plan froze it: exact semver, or a coded error. */
export function assertSemver(name: string, version: string): string {
  const parsed = semver.valid(version);
  if (!parsed || parsed !== version) {
    throw new StepError('NPM_VERSION_INVALID', `${name}@${version}: ${JSON.stringify(version)} is not an exact semver version`, {
      hint: 'fix the "version" in the package.json, then plan and build again',
    });
  }
  return version;
}

/** The sha512 entries of an SRI string (`sha512-… sha1-…`), in order; none for anything that is not a string. */
export function sha512Entries(integrity: unknown): string[] {
  return typeof integrity === 'string' ? integrity.split(/\s+/).filter((e) => e.startsWith('sha512-')) : [];
}

// ---------------------------------------------------------------- timing and retries

/** Sleep and a monotonic clock, injectable so that tests run without waiting. */
export interface Timing {
  sleep(ms: number): Promise<void>;
  /** Milliseconds on a monotonic clock (only differences are used). */
  now(): number;
}

export const realTiming: Timing = {
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: () => performance.now(),
};

/** Bounded exponential backoff for 5xx answers and network errors; 4xx answers are never retried. */
export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  minMs: number;
  factor: number;
  maxMs: number;
}

export const PUBLISH_RETRY: RetryPolicy = { retries: 3, minMs: 1000, factor: 2, maxMs: 8000 };

/** The wait before retry number `attempt` (1-based). */
export function backoff(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.minMs * policy.factor ** (attempt - 1), policy.maxMs);
}

/** A registry request that failed in a way worth retrying (5xx or no answer). */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Runs `fn`, retrying TransientErrors with backoff; the last one is turned into a coded error by `fail`. */
export async function withRetries<T>(policy: RetryPolicy, timing: Timing, fn: (attempt: number) => Promise<T>, fail: (last: TransientError, attempts: number) => StepError): Promise<T> {
  let last: TransientError | undefined;
  for (let attempt = 0; attempt <= policy.retries; attempt += 1) {
    if (attempt) await timing.sleep(backoff(policy, attempt));
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      last = err;
    }
  }
  throw fail(last as TransientError, policy.retries + 1);
}

/** fetch, with network failures turned into TransientError. */
export async function registryFetch(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new TransientError(`${init.method ?? 'GET'} ${url}: ${cause?.code ?? (err as Error).name}${cause?.message ? ` (${cause.message})` : ''}`);
  }
}

// ---------------------------------------------------------------- packuments

interface PackumentVersion {
  version?: string;
  dist?: { integrity?: string; shasum?: string; tarball?: string };
}

export interface Packument {
  name?: string;
  'dist-tags'?: Record<string, string>;
  versions?: Record<string, PackumentVersion>;
}

/** The largest package document read from a registry; the largest real ones are tens of megabytes. */
export const MAX_PACKUMENT_BYTES = 256 * 1024 * 1024;

/** The fields of a package document the release reads, with the types it reads them as. */
const PACKUMENT_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    'dist-tags': { type: 'object', additionalProperties: { type: 'string' } },
    versions: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          version: { type: 'string' },
          dist: { type: 'object', properties: { integrity: { type: 'string' }, shasum: { type: 'string' }, tarball: { type: 'string' } } },
        },
      },
    },
  },
} as const;
const validatePackument = new Ajv({ allErrors: true, strict: false }).compile<Packument>(PACKUMENT_SCHEMA);

/** The answer's body as text, refused past `maxBytes` (a registry cannot make the release hold an endless answer). */
async function boundedText(res: Response, url: string, maxBytes: number): Promise<string> {
  const tooLarge = (size: string): StepError =>
    new StepError('NPM_PACKUMENT_TOO_LARGE', `the registry answered GET ${url} with ${size}, more than the ${maxBytes} bytes a package document may have`, {
      hint: 'check MCP_RELEASE_NPM_REGISTRY: it must be an npm registry, not a proxy or a file server',
    });
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge(`${declared} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(`more than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new TransientError(`GET ${url}: the answer broke off after ${size} bytes (${(err as Error).message})`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The package document, or undefined when the registry does not know the package (404). */
export async function fetchPackument(registry: string, name: string, token?: string, options: { maxBytes?: number } = {}): Promise<Packument | undefined> {
  const url = new URL(escapeName(name), registry).href;
  const res = await registryFetch(url, {
    headers: { accept: 'application/json', 'cache-control': 'no-cache', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status >= 500) {
    await res.body?.cancel();
    throw new TransientError(`GET ${url}: HTTP ${res.status}`, res.status);
  }
  const text = await boundedText(res, url, options.maxBytes ?? MAX_PACKUMENT_BYTES);
  if (!res.ok) {
    throw new StepError('NPM_PACKUMENT_REFUSED', `the registry refused to show ${name} (GET ${url}: HTTP ${res.status} ${text.slice(0, 200)})`, {
      hint:
        res.status === 401 || res.status === 403
          ? 'a restricted package can only be read with a token; check publish.npm.access in the release policy and the trusted publisher of the package'
          : 'check MCP_RELEASE_NPM_REGISTRY: it must be an npm registry',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StepError('NPM_PACKUMENT_INVALID', `the registry answered GET ${url} with something that is not JSON`, {
      hint: 'check MCP_RELEASE_NPM_REGISTRY: it must be an npm registry, not a web page or a proxy login',
      cause: err,
    });
  }
  // a document of the wrong shape is never read as "this version is not there"
  if (!validatePackument(value)) {
    const details = describeSchemaErrors(validatePackument.errors);
    throw new StepError('NPM_PACKUMENT_INVALID', `the registry answered GET ${url} with JSON that is not a package document: ${details[0] ?? 'not an object'}`, {
      details: details.slice(0, 20),
      hint: 'check MCP_RELEASE_NPM_REGISTRY: it must be an npm registry, not a proxy or a file server that answers with other JSON',
    });
  }
  return value;
}

export type VersionState =
  | { state: 'absent'; packageExists: boolean }
  | { state: 'same'; integrity: string }
  | { state: 'different'; integrity: string | undefined; registryVersion: string };

/**
 * What the registry holds for exactly this version: nothing, the same tarball (same sha512
 * integrity) or a different one. Versions are compared as semver (`1.0.1` is not `1.0.10`, and
 * `1.0.1+a` is `1.0.1+b`, which the registry refuses to hold twice).
 */
export function versionState(packument: Packument | undefined, version: string, sha512Hex: string): VersionState {
  if (!packument) return { state: 'absent', packageExists: false };
  const key = Object.keys(packument.versions ?? {}).find((v) => semver.valid(v) !== null && semver.eq(v, version));
  if (key === undefined) return { state: 'absent', packageExists: true };
  const expected = npmIntegrity(sha512Hex);
  const integrity = packument.versions?.[key]?.dist?.integrity;
  if (sha512Entries(integrity).includes(expected)) return { state: 'same', integrity: expected };
  return { state: 'different', integrity, registryVersion: key };
}

/** The exact-version check against the registry, retrying 5xx and network failures. */
export async function checkPublishedVersion(
  options: { registry: string; name: string; version: string; sha512: string; token?: string },
  timing: Timing,
  retry: RetryPolicy = PUBLISH_RETRY,
): Promise<VersionState & { packument: Packument | undefined }> {
  const packument = await withRetries(
    retry,
    timing,
    () => fetchPackument(options.registry, options.name, options.token),
    (last, attempts) =>
      new StepError('NPM_REGISTRY_UNAVAILABLE', `could not read ${options.name} from ${options.registry} after ${attempts} attempts: ${last.message}`, {
        hint: 'the registry is failing or unreachable; nothing was published. Re-run the release (mcp-release resume) once it answers',
      }),
  );
  return { ...versionState(packument, options.version, options.sha512), packument };
}

/** The error for a version the registry holds with other bytes: never overwritten, never ignored. */
export function differentTarball(name: string, version: string, sha512Hex: string, found: { integrity: string | undefined; registryVersion: string }): StepError {
  return new StepError(
    'NPM_VERSION_CONFLICT',
    `${name}@${found.registryVersion} is already on the registry with other contents (registry ${found.integrity ?? 'has no sha512 integrity'}, this release ${npmIntegrity(sha512Hex)})`,
    {
      hint: `a published version can never be replaced. If ${name}@${version} was published from another commit, bump the version (add a changeset), plan and build again; if this build should be identical, find what made the tarball differ (npm version, sources, SOURCE_DATE_EPOCH)`,
    },
  );
}
