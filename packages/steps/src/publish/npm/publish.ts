import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { hashFile, npmIntegrity, resolveInside, type Manifest } from '@mcp-release/manifest';
import { formatDuration } from '@mcp-release/pipeline';
import { StepError } from '../../errors.js';
import type { ReleaseContext } from '../../options.js';
import type { Policy } from '../../policy.js';
import { assertAttests, hasAttestation, loadNpmProvenance, putAttestation, type NpmProvenance } from './attest.js';
import { checkNpmCli, configuredCredentials, npmPublishArgs, npmPublishEnv, translatePublishFailure, type PublishFailure } from './cli.js';
import { preflightExchange } from './oidc.js';
import { assertSemver, backoff, checkPublishedVersion, differentTarball, distTagFor, PUBLISH_RETRY, realTiming, registryFromEnv, type RetryPolicy, type Timing, withRetries } from './registry.js';
import { withRegistry } from './registry.js';
import { requirePublishablePlan } from '../tag.js';

/** How npm's provenance is handled for this run. */
export type ProvenanceMode =
  /** `npm publish --provenance`: npm signs with the public Sigstore. */
  | 'npm'
  /** The lab or a private Sigstore: npm's provenance is off, the toolkit's own is stored on the registry. */
  | 'toolkit'
  /** publish.npm.provenance: false. */
  | 'off';

export interface NpmPublishSettings {
  registry: string;
  access: 'public' | 'restricted';
  prereleaseTag: string;
  provenance: ProvenanceMode;
  waitSeconds: number;
}

export const DEFAULT_WAIT_SECONDS = 300;

/** The publish settings from the policy and the environment (MCP_RELEASE_NPM_REGISTRY, MCP_RELEASE_FULCIO_URL). */
export function npmPublishSettings(policy: Policy, env: NodeJS.ProcessEnv): NpmPublishSettings {
  const npm = policy.publish?.npm ?? {};
  const provenance: ProvenanceMode = npm.provenance === false ? 'off' : env.MCP_RELEASE_FULCIO_URL ? 'toolkit' : 'npm';
  return {
    registry: registryFromEnv(env),
    access: npm.access ?? 'public',
    prereleaseTag: npm.prereleaseTag ?? 'next',
    provenance,
    waitSeconds: npm.waitSeconds ?? DEFAULT_WAIT_SECONDS,
  };
}

/** One package of the release as it is published: the plan's version, the manifest's digests. */
export interface NpmRelease {
  name: string;
  version: string;
  /** The tarball, relative to the release folder. */
  path: string;
  sha512: string;
  integrity: string;
  distTag: string;
}

/**
 * The npm tarballs of the release, in plan order: every planned package must have exactly one
 * tarball of its planned version, and every tarball must be planned.
 */
export function npmReleases(manifest: Manifest, prereleaseTag: string): NpmRelease[] {
  const tarballs = manifest.artifacts.filter((a) => a.kind === 'npm-tarball');
  const out: NpmRelease[] = [];
  for (const p of manifest.plan.packages) {
    const mine = tarballs.filter((a) => a.meta?.name === p.name);
    if (mine.length !== 1) {
      throw new StepError(mine.length ? 'NPM_TARBALL_DUPLICATE' : 'NPM_TARBALL_MISSING', mine.length ? `${mine.length} tarballs in the manifest are ${p.name}: ${mine.map((a) => a.path).join(', ')}` : `the manifest has no npm tarball of ${p.name}, which the plan releases`, {
        hint: 're-run build-npm: it packs every planned package once',
      });
    }
    const a = mine[0] as (typeof mine)[number];
    if (a.meta?.version !== p.version) {
      throw new StepError('NPM_TARBALL_PLAN_MISMATCH', `${a.path} is ${p.name}@${String(a.meta?.version)} but the plan releases ${p.name}@${p.version}`, {
        hint: 'the tarball was built for another plan; re-run build-npm (and the steps after it) for this plan',
      });
    }
    const version = assertSemver(p.name, p.version);
    out.push({ name: p.name, version, path: a.path, sha512: a.sha512, integrity: npmIntegrity(a.sha512), distTag: distTagFor(version, prereleaseTag) });
  }
  const stray = tarballs.filter((a) => !out.some((r) => r.path === a.path));
  if (stray.length) {
    throw new StepError('NPM_TARBALL_UNPLANNED', `the manifest has npm tarballs that the plan does not release: ${stray.map((a) => a.path).join(', ')}`, {
      hint: 'remove them (re-run build-npm), or plan again with those packages in the release policy',
    });
  }
  return out;
}

export type PublishOutcome = 'published' | 'already-published';

export interface PublishedPackage {
  name: string;
  version: string;
  integrity: string;
  outcome: PublishOutcome;
  distTag: string;
  /** Whether the toolkit's provenance was stored on the registry now, or was already there. */
  attestation?: 'stored' | 'present';
}

export interface PublishNpmDeps {
  timing?: Timing;
  retry?: RetryPolicy;
}

interface Pending extends NpmRelease {
  tarballFile: string;
  outcome?: PublishOutcome;
  packageExists: boolean;
  token?: string;
  needsAttestation: boolean;
}

/** Checks a tarball on disk against the digests the manifest recorded (streamed). */
async function assertTarballIntact(ctx: ReleaseContext, r: NpmRelease): Promise<string> {
  const file = await resolveInside(ctx.releaseDir, r.path, 'release file');
  const d = await hashFile(file, ctx.deps.openRead ? { openRead: ctx.deps.openRead } : {});
  if (d.sha512 !== r.sha512) {
    throw new StepError('NPM_TARBALL_CHANGED', `${r.path} changed after build-npm recorded it (sha512 ${r.sha512.slice(0, 16)}… on record, ${d.sha512.slice(0, 16)}… on disk): nothing was published`, {
      hint: 'something modified the release folder; re-run build-npm and the steps after it',
    });
  }
  return file;
}

/**
 * Publishes the release's npm tarballs through trusted publishing. Everything that can fail
 * before an upload is checked for every package before the first one is published: npm's
 * version, that no token is configured, the tarballs' digests, the provenance, the registry's
 * exact versions and the token exchange.
 */
export async function publishNpm(ctx: ReleaseContext, deps: PublishNpmDeps = {}): Promise<{ settings: NpmPublishSettings; packages: PublishedPackage[] }> {
  requirePublishablePlan(ctx, 'publish-npm');
  const timing = deps.timing ?? realTiming;
  const retry = deps.retry ?? PUBLISH_RETRY;
  const settings = npmPublishSettings(ctx.options.policy, await withRegistry(ctx.deps, ctx.repoRoot));
  const releases = npmReleases(ctx.manifest, settings.prereleaseTag);
  const { registry } = settings;
  const cwd = path.join(ctx.workDir, 'npm-publish');
  await mkdir(cwd, { recursive: true });

  const env = npmPublishEnv(ctx.deps.env, { registry, provenanceOff: settings.provenance !== 'npm' });
  const npmVersion = await checkNpmCli(ctx.deps.exec, env, cwd);
  const credentials = await configuredCredentials(ctx.deps.exec, env, cwd, registry);
  if (credentials.length) {
    throw new StepError('NPM_TOKEN_CONFIGURED', `a credential for ${registry} is configured for npm: ${credentials.join(', ')}. This release publishes only through trusted publishing (OIDC), never with a token`, {
      hint: 'remove the credential line from that .npmrc (a `${NODE_AUTH_TOKEN}` placeholder, as actions/setup-node writes it, is fine: the variable is never passed to npm)',
    });
  }
  ctx.log.info(`  npm ${npmVersion}, registry ${registry}, provenance: ${settings.provenance}`);

  const provenance: NpmProvenance | undefined = settings.provenance === 'toolkit' ? await loadNpmProvenance(ctx.manifest, ctx.releaseDir) : undefined;
  const pending: Pending[] = [];
  for (const r of releases) {
    const tarballFile = await assertTarballIntact(ctx, r);
    if (provenance) assertAttests(provenance, r.name, r.version, r.sha512);
    pending.push({ ...r, tarballFile, packageExists: false, needsAttestation: false });
  }

  // The registry's view of every version, then the exchanges: all before the first upload.
  const attested = async (p: Pending): Promise<boolean> => withRetries(retry, timing, () => hasAttestation(registry, p.name, p.version, provenance as NpmProvenance), () => attestationUnavailable(p));
  for (const p of pending) {
    const state = await checkPublishedVersion({ registry, name: p.name, version: p.version, sha512: p.sha512 }, timing, retry);
    if (state.state === 'different') throw differentTarball(p.name, p.version, p.sha512, state);
    p.packageExists = state.state === 'same' || state.packageExists;
    if (state.state === 'same') {
      p.outcome = 'already-published';
      p.needsAttestation = provenance !== undefined && !(await attested(p));
    }
  }
  for (const p of pending) {
    if (p.outcome && !p.needsAttestation) continue;
    ctx.progress(`exchanging the job's ID token for ${p.name}`);
    // The wall clock here only tells an expired ID token from another refusal; nothing recorded
    // depends on it (the release's time is the plan's).
    const { token } = await preflightExchange({ env: ctx.deps.env, registry, name: p.name, bindings: ctx.options.policy.trustedPublishers ?? [], packageExists: p.packageExists, now: new Date(), timing, retry });
    p.token = token;
    if (!p.outcome) {
      // A restricted package shows its versions to its publishers only: ask again as one.
      const state = await checkPublishedVersion({ registry, name: p.name, version: p.version, sha512: p.sha512, token }, timing, retry);
      if (state.state === 'different') throw differentTarball(p.name, p.version, p.sha512, state);
      if (state.state === 'same') {
        p.outcome = 'already-published';
        p.needsAttestation = provenance !== undefined && !(await attested(p));
      }
    }
  }

  const out: PublishedPackage[] = [];
  for (const p of pending) {
    if (!p.outcome) {
      p.outcome = await publishOne(ctx, p, { env, cwd, settings, timing, retry });
      // another run published the same bytes meanwhile: its provenance may be there already
      if (p.outcome === 'already-published' && provenance) p.needsAttestation = !(await attested(p));
    }
    let attestation: PublishedPackage['attestation'];
    if (provenance) {
      if (p.outcome === 'published' || p.needsAttestation) {
        const token = p.token as string;
        await withRetries(retry, timing, () => putAttestation(registry, p.name, p.version, provenance, token), () => attestationUnavailable(p));
        attestation = 'stored';
      } else attestation = 'present';
    }
    ctx.log.info(`  ${p.name}@${p.version}: ${p.outcome} (dist-tag ${p.distTag}${attestation ? `, provenance ${attestation}` : ''})`);
    out.push({ name: p.name, version: p.version, integrity: p.integrity, outcome: p.outcome, distTag: p.distTag, ...(attestation ? { attestation } : {}) });
  }
  return { settings, packages: out };
}

function attestationUnavailable(p: NpmRelease): StepError {
  return new StepError('NPM_ATTESTATION_UNAVAILABLE', `the registry's attestations endpoint kept failing for ${p.name}@${p.version}`, {
    hint: 're-run the release once the registry answers: a published version is recognised and only its provenance is stored',
  });
}

interface PublishRun {
  env: NodeJS.ProcessEnv;
  cwd: string;
  settings: NpmPublishSettings;
  timing: Timing;
  retry: RetryPolicy;
}

/**
 * `npm publish <tarball>` with the toolkit's retries: 5xx answers and network errors are retried
 * with backoff, and before each retry the registry is asked again, because a publish whose answer
 * was lost may have landed. A 4xx answer is final.
 */
async function publishOne(ctx: ReleaseContext, p: Pending, run: PublishRun): Promise<PublishOutcome> {
  const spec = `${p.name}@${p.version}`;
  const args = npmPublishArgs({ tarball: p.tarballFile, access: run.settings.access, tag: p.distTag, registry: run.settings.registry, provenance: run.settings.provenance === 'npm' });
  let last: PublishFailure | undefined;
  for (let attempt = 0; attempt <= run.retry.retries; attempt += 1) {
    if (attempt) {
      const wait = backoff(run.retry, attempt);
      ctx.log.warn(`${spec}: ${last?.error.message}; checking the registry and retrying in ${formatDuration(wait)} (attempt ${attempt + 1} of ${run.retry.retries + 1})`);
      await run.timing.sleep(wait);
      const state = await checkPublishedVersion({ registry: run.settings.registry, name: p.name, version: p.version, sha512: p.sha512, ...(p.token ? { token: p.token } : {}) }, run.timing, run.retry);
      if (state.state === 'same') return 'published';
      if (state.state === 'different') throw differentTarball(p.name, p.version, p.sha512, state);
    }
    ctx.progress(`publishing ${spec} with dist-tag ${p.distTag}`);
    const result = await ctx.deps.exec('npm', args, { env: run.env, cwd: run.cwd, timeoutMs: 15 * 60_000 });
    if (result.exitCode === 0) return 'published';
    const failure = translatePublishFailure(result, spec, run.settings.registry);
    if (failure.kind === 'exists') {
      const state = await checkPublishedVersion({ registry: run.settings.registry, name: p.name, version: p.version, sha512: p.sha512, ...(p.token ? { token: p.token } : {}) }, run.timing, run.retry);
      if (state.state === 'same') return attempt ? 'published' : 'already-published';
      if (state.state === 'different') throw differentTarball(p.name, p.version, p.sha512, state);
      throw failure.error;
    }
    if (failure.kind !== 'retryable') throw failure.error;
    last = failure;
  }
  const error = (last as PublishFailure).error;
  throw new StepError(error.code, `${error.message} (${run.retry.retries + 1} attempts)`, { ...(error.hint ? { hint: error.hint } : {}), details: error.details });
}
