import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { hashFile, newManifest, type Artifact, type Manifest } from '@mcp-release/manifest';
import { createContext, runPipeline, type Deps, type Logger, type RunResult } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import { releaseRemote, remoteTags, requireOnDefaultBranch } from '../git.js';
import { packedPackageJson } from '../mcp-consistency.js';
import type { ReleaseOptions } from '../options.js';
import type { Policy } from '../policy.js';
import { NPM_PROVENANCE_FILE } from '../provenance/statement.js';
import { loadTrustedRoot, verifyRelease } from '../verify/index.js';
import { GITHUB_ACTIONS_ISSUER } from '../verify-step.js';
import { downloadDraft, findReleases, githubReleaseClientFromEnv, releaseRepository } from './github/index.js';
import { publishNpmStep, waitRegistryStep } from './npm/index.js';

export interface RecoverInput {
  repoRoot: string;
  policy: Policy;
  /** The package to publish again. */
  packageName: string;
  /** The existing release tag whose signed tarball is published. */
  tag: string;
  outDir: string;
  deps: Deps;
  log: Logger;
}

export interface RecoverResult {
  run: RunResult;
  manifest: Manifest;
  version: string;
  releaseDir: string;
}

/**
 * `mcp-release recover`: publishes one package at one existing tag, when npm is missing a version
 * that the GitHub release already holds (e.g. the publish job expired before it could be re-run).
 * It never makes a new version: the tarball is the one on the release, downloaded and verified
 * as a consumer would first, at a tag that exists on the default branch. The publish goes through
 * the same trusted-publisher binding (OIDC, the release workflow and environment), and a version
 * that is already on the registry with the same integrity is left as it is.
 */
export async function recoverPackage(input: RecoverInput): Promise<RecoverResult> {
  const { policy, deps, repoRoot, tag, packageName } = input;
  const signer = policy.signer;
  if (!signer) {
    throw new StepError('RECOVER_NO_SIGNER', 'recover verifies the release before publishing from it, and the policy names no signer', { hint: 'add signer: to the release policy' });
  }
  if (!(policy.trustedPublishers ?? []).some((t) => t.package === packageName)) {
    throw new StepError('RECOVER_NOT_BOUND', `${packageName} has no trusted-publisher binding in the release policy, so recover cannot publish it`, {
      hint: 'recover only publishes through the binding the release uses; add the package under trustedPublishers: (and on the registry)',
    });
  }
  const remote = releaseRemote(policy, deps.env);
  const remoteTag = (await remoteTags(deps, repoRoot, remote, tag)).get(tag);
  if (!remoteTag) {
    throw new StepError('RECOVER_TAG_MISSING', `the tag ${tag} does not exist on ${remote.label}`, {
      hint: 'recover republishes an existing release only; for a release that never got its tag, use mcp-release resume with its manifest',
    });
  }
  const branch = await requireOnDefaultBranch(deps, repoRoot, policy, remoteTag.commit);

  const client = await githubReleaseClientFromEnv(deps.env, releaseRepository(policy, deps.env));
  const found = await findReleases(client, tag);
  if (!found.published) {
    throw new StepError('RECOVER_RELEASE_NOT_PUBLISHED', `there is no published GitHub release for ${tag}${found.drafts.length ? ' (only a draft)' : ''}`, {
      hint: found.drafts.length ? 'a draft means the release did not finish: run mcp-release resume --manifest with its manifest' : 'check the tag; recover publishes from a published release',
    });
  }
  const outDir = path.resolve(input.outDir);
  const releaseDir = path.join(outDir, 'release');
  await rm(releaseDir, { recursive: true, force: true });
  input.log.progress(`downloading the release ${tag} from ${client.repository}`);
  await downloadDraft(client, found.published.id, releaseDir);

  const { trustedRoot } = await loadTrustedRoot({ env: deps.env, offline: false });
  const verified = await verifyRelease({
    folder: releaseDir,
    policy: { repository: signer.repository, workflow: signer.workflow, refPattern: signer.ref, issuer: signer.issuer ?? GITHUB_ACTIONS_ISSUER },
    trustedRoot,
  });
  if (verified.status !== 'verified') {
    const bad = verified.checks.filter((c) => c.status === 'failed' || c.status === 'error');
    throw new StepError('RECOVER_RELEASE_NOT_VERIFIED', `the release ${tag} does not verify (${verified.status}), so nothing is published from it`, {
      details: bad.slice(0, 12).map((c) => `${c.name}${c.file ? ` ${c.file}` : ''}: ${c.detail}`),
      hint: 'investigate the release; never publish bytes that do not verify',
    });
  }

  const artifacts: Artifact[] = [];
  let planned: { name: string; version: string } | undefined;
  for (const name of (await readdir(releaseDir)).sort()) {
    const file = path.join(releaseDir, name);
    if (name.endsWith('.tgz')) {
      const pkg = await packedPackageJson(file);
      if (pkg.name !== packageName) continue;
      if (planned) throw new StepError('RECOVER_AMBIGUOUS', `the release ${tag} holds more than one tarball of ${packageName}`, { hint: 'recover needs exactly one' });
      planned = { name: packageName, version: String(pkg.version) };
      artifacts.push({ path: name, kind: 'npm-tarball', platform: 'any', ...(await hashFile(file)), producedBy: 'recover', meta: { name: packageName, version: String(pkg.version) } });
    } else if (name === NPM_PROVENANCE_FILE) {
      artifacts.push({ path: name, kind: 'provenance', platform: 'any', ...(await hashFile(file)), producedBy: 'recover' });
    }
  }
  if (!planned) {
    throw new StepError('RECOVER_PACKAGE_NOT_IN_RELEASE', `the release ${tag} holds no tarball of ${packageName}`, { hint: 'check the package name and the tag: recover publishes only what the release holds' });
  }
  const policyPackage = policy.packages.find((p) => p.path);
  // Nothing here is dated by the clock: the recover plan takes the tagged commit's time.
  const epoch = Number((await deps.exec('git', ['log', '-1', '--format=%ct', remoteTag.commit], { cwd: repoRoot })).stdout.trim()) || 0;
  const manifest = newManifest({
    commit: remoteTag.commit,
    dirty: false,
    timestamp: new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    epoch,
    timestampSource: 'commit',
    tag,
    packages: [{ ...planned, path: policyPackage?.path ?? '.' }],
    branch,
  });
  manifest.artifacts = artifacts;
  await mkdir(outDir, { recursive: true });
  const options: ReleaseOptions = { policy, platform: 'any' };
  const ctx = createContext<ReleaseOptions>({
    repoRoot,
    releaseDir,
    workDir: path.join(outDir, 'work'),
    manifestPath: path.join(outDir, 'manifest.json'),
    manifest,
    options,
    deps,
    log: input.log,
  });
  await mkdir(ctx.workDir, { recursive: true });
  const run = await runPipeline([publishNpmStep, waitRegistryStep], ctx);
  return { run, manifest: ctx.manifest, version: planned.version, releaseDir };
}
