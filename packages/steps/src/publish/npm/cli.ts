import { readFile } from 'node:fs/promises';
import semver from 'semver';
import { tailLines, type Exec, type ExecResult } from '@mcp-release/pipeline';
import { StepError } from '../../errors.js';
import { nerfDart } from './registry.js';

/** The first npm release with trusted publishing (the OIDC exchange in `npm publish`). */
export const MIN_NPM_VERSION = '11.5.1';

/** Checks the output of `npm --version`. */
export function assertNpmVersion(output: string): string {
  const version = output.trim();
  if (!semver.valid(version)) {
    throw new StepError('NPM_VERSION_UNREADABLE', `\`npm --version\` printed ${JSON.stringify(version.slice(0, 80))}, not a version`, {
      hint: `install npm ${MIN_NPM_VERSION} or newer (\`npm install -g npm@latest\`, or actions/setup-node with node-version 24)`,
    });
  }
  if (semver.lt(version, MIN_NPM_VERSION)) {
    throw new StepError('NPM_TOO_OLD', `npm ${version} cannot publish through trusted publishing (OIDC); it needs npm ${MIN_NPM_VERSION} or newer`, {
      hint: `upgrade npm in the publishing job before this step: \`npm install -g npm@latest\` (or use Node 24, whose npm is new enough)`,
    });
  }
  return version;
}

/** Runs the real `npm --version` and checks it. */
export async function checkNpmCli(exec: Exec, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const r = await exec('npm', ['--version'], { env, cwd, timeoutMs: 60_000 });
  if (r.exitCode !== 0) {
    throw new StepError('NPM_VERSION_UNREADABLE', `\`npm --version\` exited with status ${r.exitCode}`, {
      hint: `install Node.js with npm ${MIN_NPM_VERSION} or newer`,
      details: tailLines(r.stderr, 10),
    });
  }
  return assertNpmVersion(r.stdout);
}

/** Variables that only carry a token into an `.npmrc` (`${NODE_AUTH_TOKEN}`): dropped so no token can reach npm. */
export const TOKEN_VARIABLES = ['NPM_TOKEN', 'NODE_AUTH_TOKEN', 'NPM_ID_TOKEN'];
/** npm settings that are credentials. */
const CREDENTIAL_KEY = /(?:^|:)(_authToken|_auth|_password|username)$/i;

/** Whether a credential setting (`//host/path/:_authToken`, or an unscoped `_authToken`) applies to the registry. */
function forRegistry(setting: string, registry: string): boolean {
  const scope = setting.replace(CREDENTIAL_KEY, '').replace(/:$/, '').toLowerCase();
  const dart = nerfDart(registry).toLowerCase();
  return scope === '' || scope === dart || `${scope}/` === dart;
}

export interface NpmEnvOptions {
  registry: string;
  /** Turn npm's own provenance off (the lab, or provenance disabled by policy). */
  provenanceOff: boolean;
}

/**
 * The environment `npm publish` runs with: the job's, without any token, with the registry, the
 * GitHub Actions OIDC variables and the provenance switch set by the toolkit alone. A token
 * configured for the registry through an npm_config_ variable is an error, not something to drop
 * quietly: it would be a second, long-lived way to publish.
 */
export function npmPublishEnv(env: NodeJS.ProcessEnv, options: NpmEnvOptions): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  const configured: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const upper = key.toUpperCase();
    if (TOKEN_VARIABLES.includes(upper)) continue;
    if (upper.startsWith('NPM_CONFIG_')) {
      const setting = key.slice('npm_config_'.length);
      const lower = setting.toLowerCase();
      if (CREDENTIAL_KEY.test(setting)) {
        if (value !== '' && forRegistry(setting, options.registry)) configured.push(key);
        continue;
      }
      // set below, once, by the toolkit
      if (lower === 'registry' || lower === 'provenance' || lower === 'fetch-retries' || lower === 'fetch_retries') continue;
    }
    out[key] = value;
  }
  if (configured.length) {
    throw new StepError('NPM_TOKEN_CONFIGURED', `a registry credential is configured in the environment (${configured.join(', ')}): this release publishes only through trusted publishing (OIDC), never with a token`, {
      hint: 'remove that variable from the workflow (and delete the token on the registry if it is no longer needed); the publishing job needs `permissions: id-token: write` and no npm token',
    });
  }
  out.npm_config_registry = options.registry;
  out.npm_config_update_notifier = 'false';
  out.npm_config_fund = 'false';
  out.npm_config_audit = 'false';
  if (options.provenanceOff) out.NPM_CONFIG_PROVENANCE = 'false';
  // A registry that takes the upload and never answers fails the attempt in a minute, not npm's
  // default five; the toolkit's own retry then re-checks the registry first.
  if (!Object.keys(out).some((k) => /^npm_config_fetch[-_]timeout$/i.test(k))) out.npm_config_fetch_timeout = String(PUBLISH_FETCH_TIMEOUT_MS);
  return out;
}

/** npm's per-request time limit for the publish, unless the environment sets one. */
export const PUBLISH_FETCH_TIMEOUT_MS = 60_000;

/**
 * Lines of `npm config list` that configure a credential for the registry, from an .npmrc file
 * (npm shows their values as `(protected)`). A line that only refers to one of TOKEN_VARIABLES
 * is harmless: those are not passed to npm.
 */
export async function configuredCredentials(exec: Exec, env: NodeJS.ProcessEnv, cwd: string, registry: string): Promise<string[]> {
  const r = await exec('npm', ['config', 'list'], { env, cwd, timeoutMs: 60_000 });
  if (r.exitCode !== 0) {
    throw new StepError('NPM_CONFIG_UNREADABLE', '`npm config list` failed: npm cannot read its configuration', {
      hint: 'fix the .npmrc files npm names below, then run again',
      details: tailLines(r.stderr, 10),
    });
  }
  const found: string[] = [];
  let source: { label: string; file?: string } = { label: 'npm configuration' };
  for (const line of r.stdout.split('\n')) {
    const header = /^; "(\w+)" config from (.+)$/.exec(line.trim());
    if (header) {
      const where = header[2] as string;
      source = { label: `${header[1]} config ${where}`, ...(where.startsWith('/') || /^[A-Za-z]:\\/.test(where) ? { file: where } : {}) };
      continue;
    }
    const key = /^(\S+?)\s*=\s*\(protected\)\s*$/.exec(line.trim())?.[1];
    if (!key || !CREDENTIAL_KEY.test(key) || !forRegistry(key, registry)) continue;
    if (source.file && onlyStrippedVariable(await rawSetting(source.file, key))) continue;
    found.push(`${key} (${source.label})`);
  }
  return found;
}

/** The value of `key` as written in an .npmrc file (before npm replaces ${VARIABLES}). */
async function rawSetting(file: string, key: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return '';
  }
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq).trim() === key) return line.slice(eq + 1).trim();
  }
  return '';
}

/** Whether a credential's raw value is only `${NODE_AUTH_TOKEN}` (or another variable that is not passed to npm). */
export function onlyStrippedVariable(raw: string): boolean {
  const m = /^\$\{(\w+)\}$/.exec(raw.trim().replace(/^["']|["']$/g, ''));
  return m !== null && TOKEN_VARIABLES.includes((m[1] as string).toUpperCase());
}

export interface NpmPublishArgs {
  tarball: string;
  access: 'public' | 'restricted';
  tag: string;
  registry: string;
  provenance: boolean;
}

/** The `npm publish` command line: one tarball, never a folder (no lifecycle scripts), no npm retries. */
export function npmPublishArgs(a: NpmPublishArgs): string[] {
  return [
    'publish',
    a.tarball,
    '--access',
    a.access,
    '--tag',
    a.tag,
    '--registry',
    a.registry,
    '--fetch-retries=0',
    '--ignore-scripts',
    '--json',
    '--loglevel=verbose',
    ...(a.provenance ? ['--provenance'] : []),
  ];
}

export type PublishFailureKind = 'retryable' | 'exists' | 'fatal';

export interface PublishFailure {
  kind: PublishFailureKind;
  /** npm's error code (E404, ENEEDAUTH, …) or '' when npm gave none. */
  npmCode: string;
  error: StepError;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'ERR_SOCKET_TIMEOUT', 'FETCH_ERROR']);

/** npm's `--json` error object (printed on stdout), else the `npm error code` line. */
export function npmErrorOf(result: Pick<ExecResult, 'stdout' | 'stderr'>): { code: string; summary: string; detail: string } {
  const start = result.stdout.lastIndexOf('{\n  "error"');
  if (start >= 0) {
    try {
      const { error } = JSON.parse(result.stdout.slice(start)) as { error?: { code?: unknown; summary?: unknown; detail?: unknown } };
      if (error) return { code: typeof error.code === 'string' ? error.code : '', summary: typeof error.summary === 'string' ? error.summary : '', detail: typeof error.detail === 'string' ? error.detail : '' };
    } catch {
      // fall through to the text form
    }
  }
  const code = /^npm error code (\S+)/m.exec(result.stderr)?.[1] ?? '';
  const summary = result.stderr
    .split('\n')
    .filter((l) => l.startsWith('npm error ') && !/^npm error (code|A complete log)/.test(l))
    .map((l) => l.slice('npm error '.length))
    .join(' ');
  return { code, summary, detail: '' };
}

/** npm's last word about the exchange it did itself (its verbose log only has it). */
function npmExchangeLine(stderr: string): string | undefined {
  const refused = /Failed token exchange request with body message: (.*)$/m.exec(stderr)?.[1];
  if (refused) return refused;
  const skipped = /oidc Skipped because (.*)$/m.exec(stderr)?.[1];
  return skipped ? `npm skipped OIDC: ${skipped}` : undefined;
}

/**
 * Translates a failed `npm publish` into its cause and fix. 5xx answers and network errors are
 * retryable; every 4xx is final.
 */
export function translatePublishFailure(result: Pick<ExecResult, 'stdout' | 'stderr' | 'exitCode' | 'timedOut'>, spec: string, registry: string): PublishFailure {
  const { code, summary, detail } = npmErrorOf(result);
  const text = `${summary} ${detail}`.trim();
  const said = result.stderr
    .split('\n')
    .filter((l) => /^npm (error|warn|notice) /.test(l) && !/^npm error (code |A complete log)/.test(l) && !/^npm error \d{3}\s*$/.test(l));
  const details = said.length ? tailLines(said.join('\n'), 12) : text ? [text.replace(/\s+/g, ' ')] : tailLines(result.stderr, 8);
  const fail = (kind: PublishFailureKind, errCode: string, message: string, hint: string): PublishFailure => ({ kind, npmCode: code, error: new StepError(errCode, message, { hint, details }) });

  if (result.timedOut) return fail('retryable', 'NPM_PUBLISH_TIMEOUT', `npm publish of ${spec} did not finish in time`, 'the registry is slow or unreachable; re-run the release');
  if (/^E5\d\d$/.test(code) || NETWORK_CODES.has(code) || /network timeout|socket hang up|ECONNRESET/i.test(text)) {
    return fail('retryable', 'NPM_PUBLISH_UNAVAILABLE', `the registry failed during the publish of ${spec} (${code || 'network error'}: ${summary})`, 'the registry is failing or unreachable; re-run the release (mcp-release resume) once it answers: a version that landed is recognised and not published twice');
  }
  if (code === 'E409' || /cannot publish over the previously published versions/i.test(text)) {
    return fail('exists', 'NPM_PUBLISH_VERSION_EXISTS', `the registry already has ${spec} (${code || 'npm refused before uploading'}: ${summary})`, 'a published version is never replaced; if its contents differ from this release, bump the version and release again');
  }
  switch (code) {
    case 'E404':
      return fail(
        'fatal',
        'NPM_PUBLISH_CREDENTIAL_DEAD',
        `the registry answered 404 Not Found to the publish of ${spec}. The package is not missing: this is how the registry disguises a dead credential (the #4463 incident pattern) — the exchanged publish token is expired or revoked, or the exchange behind it no longer holds`,
        `re-run the publish: it exchanges a fresh ID token for a new publish token. If the 404 repeats, check that the package's trusted publisher on ${registry} still names this repository, workflow and environment, and that no stale token is configured for the registry`,
      );
    case 'E401':
      return fail('fatal', 'NPM_PUBLISH_UNAUTHORIZED', `the registry refused the credential for the publish of ${spec} (401 Unauthorized)`, 'the exchanged publish token was not accepted (expired, or minted for another package); re-run the job for a fresh exchange, and make sure no token is configured for the registry');
    case 'EOTP':
      return fail(
        'fatal',
        'NPM_PUBLISH_OTP_REQUIRED',
        `the registry asked for a one-time password to publish ${spec}: npm did not publish with a trusted-publishing token`,
        'trusted publishing needs no OTP; this means a user credential was used. Remove any npm token or login from the job and check that the package\'s trusted publisher matches this workflow',
      );
    case 'E403':
      return fail(
        'fatal',
        'NPM_PUBLISH_FORBIDDEN',
        `the registry forbade the publish of ${spec} (403: ${summary})`,
        'the publish token may only publish the package it was exchanged for; check the package name in the tarball, publish.npm.access in the release policy (a scoped package on a free scope must be public), and the package\'s publishing settings on the registry',
      );
    case 'ENEEDAUTH': {
      const why = npmExchangeLine(result.stderr);
      // npm's own exchange hit a failing registry: that is an outage, not a refusal
      if (/POST 5\d\d \S*\/-\/npm\/v1\/oidc\/token\/exchange\//.test(result.stderr)) {
        return fail('retryable', 'NPM_PUBLISH_UNAVAILABLE', `the registry's token exchange failed while npm published ${spec}`, 'the registry is failing; re-run the release once it answers');
      }
      return fail(
        'fatal',
        'NPM_PUBLISH_NO_CREDENTIAL',
        `npm had no credential to publish ${spec}: its own ID-token exchange failed${why ? ` (${why})` : ''}, although the toolkit's preflight exchange had succeeded`,
        'the exchange is refused only now (the trusted publisher was changed, or the ID token could not be fetched again); re-run the job, and check that GITHUB_ACTIONS, ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN reach npm',
      );
    }
    default:
      return fail('fatal', 'NPM_PUBLISH_FAILED', `npm publish of ${spec} failed (${code || `exit status ${result.exitCode}`}${summary ? `: ${summary}` : ''})`, 'read npm\'s output below; fix the cause and re-run the release (a version that landed is recognised and not published twice)');
  }
}
