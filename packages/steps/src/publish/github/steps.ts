import { rm } from 'node:fs/promises';
import path from 'node:path';
import { compareNames, resolveInside, type Manifest } from '@mcp-release/manifest';
import { skip, type Step } from '@mcp-release/pipeline';
import { withRegistry } from '../npm/registry.js';
import { requirePublishablePlan } from '../tag.js';
import { StepError } from '../../errors.js';
import type { ReleaseContext, ReleaseOptions } from '../../options.js';
import { GITHUB_ACTIONS_ISSUER } from '../../verify-step.js';
import { loadTrustedRoot, verifyRelease } from '../../verify/index.js';
import { githubReleaseClientFromEnv, releaseRepository, type GithubReleaseClient } from './client.js';
import { isPrerelease, releaseNotes, releaseTitle } from './notes.js';
import { assetNameProblem, downloadDraft, ensureDraft, findReleases, undraft, uploadAssets, type ExpectedAsset, type ReleaseFile } from './release.js';

/** ReleaseOptions plus what the GitHub release steps read (until ReleaseOptions carries it). */
type GithubReleaseOptions = ReleaseOptions & {
  /** release-draft: replace draft assets whose bytes differ and delete assets that are not release files. */
  replace?: boolean;
};

/** Every release file the manifest lists, as the assets the GitHub release must hold. */
export function expectedAssets(manifest: Manifest): ExpectedAsset[] {
  return manifest.artifacts
    .map((a) => {
      const problem = assetNameProblem(a.path);
      if (problem) {
        throw new StepError('RELEASE_ASSET_NAME', `release file ${JSON.stringify(a.path)} (from ${a.producedBy}) cannot be a GitHub release asset: it ${problem}`, {
          hint: 'release files are flat, plainly named files; rename it in the step that produces it and run that step again',
        });
      }
      return { name: a.path, size: a.size, sha256: a.sha256 };
    })
    .sort((x, y) => compareNames(x.name, y.name));
}

async function clientFor(ctx: ReleaseContext): Promise<GithubReleaseClient> {
  const repository = releaseRepository(ctx.options.policy, ctx.deps.env);
  return githubReleaseClientFromEnv(ctx.deps.env, repository, { onProgress: (e) => ctx.progress(e.message) });
}

function requireFiles(ctx: ReleaseContext): ExpectedAsset[] {
  const expected = expectedAssets(ctx.manifest);
  if (!expected.length) throw new StepError('RELEASE_EMPTY', 'the manifest lists no release files to put on GitHub', { hint: 'run the release steps first (mcp-release build, then checksums and sign)' });
  return expected;
}

/** The folder under workDir where the draft is downloaded to be verified. */
export function draftFolder(ctx: Pick<ReleaseContext, 'workDir' | 'manifest'>): string {
  return path.join(ctx.workDir, 'draft', ctx.manifest.plan.tag.replace(/[/\\]/g, '_'));
}

/**
 * The draft GitHub release of the planned tag, with every release file the manifest lists as an
 * asset. It runs every time (no fingerprint): what is on GitHub can change between runs, and a
 * re-run costs one digest comparison per asset. A published release is never touched.
 */
export const releaseDraftStep: Step<ReleaseOptions> = {
  name: 'release-draft',
  description: 'make the draft GitHub release and upload every release file to it',
  async run(ctx) {
    requirePublishablePlan(ctx, 'release-draft');
    const expected = requireFiles(ctx);
    const files: ReleaseFile[] = [];
    for (const e of expected) files.push({ ...e, file: await resolveInside(ctx.releaseDir, e.name, 'release file') });
    const client = await clientFor(ctx);
    const { plan } = ctx.manifest;
    const { policy } = ctx.options;
    const prerelease = isPrerelease(policy, plan);
    const draft = await ensureDraft(client, { tag: plan.tag, commit: plan.commit, name: releaseTitle(policy, plan), body: releaseNotes({ plan, repository: client.repository }), prerelease, expected });
    const base = { repository: client.repository, tag: plan.tag, releaseId: draft.release.id, url: draft.release.url, state: draft.state, prerelease, assets: expected.length };
    if (draft.state === 'already-published') {
      return {
        notes: [`${plan.tag} is already published with these ${expected.length} file(s): nothing to do`],
        data: { ...base, uploaded: 0, skipped: expected.length, replaced: 0, deleted: 0, markdown: `- GitHub release [${plan.tag}](${draft.release.url}) was already published with the same ${expected.length} file(s).` },
      };
    }
    const replace = (ctx.options as GithubReleaseOptions).replace === true;
    const up = await uploadAssets(client, draft.release, files, { replace });
    if (up.uploaded.length + up.replaced.length + up.deleted.length > 0 && ctx.manifest.steps['verify-draft']) {
      // the draft changed: an earlier verification of it no longer says anything about it
      delete ctx.manifest.steps['verify-draft'];
    }
    const counts = `${up.uploaded.length} uploaded, ${up.skipped.length} already there, ${up.replaced.length} replaced${up.deleted.length ? `, ${up.deleted.length} deleted` : ''}`;
    return {
      notes: [`draft ${draft.state === 'created' ? 'made' : 'reused'} on ${client.repository}: ${counts}`],
      data: {
        ...base,
        uploaded: up.uploaded.length,
        skipped: up.skipped.length,
        replaced: up.replaced.length,
        deleted: up.deleted.length,
        ...(up.replaced.length ? { replacedAssets: up.replaced } : {}),
        ...(up.deleted.length ? { deletedAssets: up.deleted } : {}),
        markdown: `- Draft GitHub release [${plan.tag}](${draft.release.url}) (id ${draft.release.id}, ${draft.state}): ${expected.length} asset(s); ${counts}.`,
      },
    };
  },
};

/**
 * The draft checked as a consumer would check the release: every asset downloaded through the
 * API into the work folder, then verified from those bytes alone (checksums, every signature
 * against the policy's signer identity, provenance) and compared with the manifest. The local
 * release folder plays no part.
 */
function consumerVerifyStep(stage: 'draft' | 'published'): Step<ReleaseOptions> {
  return {
    name: stage === 'draft' ? 'verify-draft' : 'verify-published',
    description: stage === 'draft' ? 'download the draft GitHub release and verify it as a consumer would' : 'download the published release and verify it as a consumer would, with the registry',
    skip(ctx) {
      return ctx.options.policy.signer ? undefined : skip('no signer identity in the policy (signer:), so there is nothing to verify against');
    },
    async run(ctx) {
      const signer = ctx.options.policy.signer as NonNullable<ReleaseOptions['policy']['signer']>;
      const expected = requireFiles(ctx);
      const client = await clientFor(ctx);
      const { tag } = ctx.manifest.plan;
      const found = await findReleases(client, tag);
      const release = found.published ?? found.drafts[0];
      if (stage === 'published' && !found.published) {
        throw new StepError('RELEASE_NOT_PUBLISHED', `the release ${tag} on ${client.repository} is not published`, { hint: 'run the undraft step (mcp-release resume finishes the release)' });
      }
      if (!release) throw new StepError('RELEASE_DRAFT_MISSING', `there is no draft release of ${tag} on ${client.repository} to verify`, { hint: 'run release-draft first' });
      if (!found.published && found.drafts.length > 1) {
        throw new StepError('RELEASE_DRAFT_AMBIGUOUS', `${found.drafts.length} draft releases on ${client.repository} are for ${tag}`, { details: found.drafts.map((d) => `draft ${d.id}: ${d.url}`), hint: 'delete the extra drafts on GitHub, then run release-draft again' });
      }
      const dir = stage === 'draft' ? draftFolder(ctx) : `${draftFolder(ctx)}-published`;
      await rm(dir, { recursive: true, force: true });
      const downloaded = await downloadDraft(client, release.id, dir);
      const { trustedRoot, source } = await loadTrustedRoot({ env: ctx.deps.env, offline: false });
      const result = await verifyRelease({
        folder: dir,
        policy: { repository: signer.repository, workflow: signer.workflow, refPattern: signer.ref, issuer: signer.issuer ?? GITHUB_ACTIONS_ISSUER },
        trustedRoot,
        ...(stage === 'published' && ctx.manifest.artifacts.some((a) => a.kind === 'npm-tarball') ? { registry: (await withRegistry(ctx.deps, ctx.repoRoot)).MCP_RELEASE_NPM_REGISTRY as string } : {}),
      });
      if (result.status !== 'verified') {
        const bad = result.checks.filter((c) => c.status === 'failed' || c.status === 'error');
        throw new StepError('RELEASE_DRAFT_NOT_VERIFIED', `the ${release.draft ? 'draft' : 'published'} release ${tag} on GitHub does not verify as a consumer would check it (${result.status}): ${bad.length} check(s) failed`, {
          details: bad.slice(0, 12).map((c) => `${c.name}${c.file ? ` ${c.file}` : ''}: ${c.detail}`),
          hint: release.draft ? 'nothing was published; the draft holds other bytes than were signed: run release-draft --replace to upload the release files again, then verify-draft' : 'the release is already public: investigate it, and release a new version',
        });
      }
      const onGithub = new Map(downloaded.assets.map((a) => [a.name, a]));
      const diffs = expected.filter((e) => onGithub.get(e.name)?.sha256 !== e.sha256).map((e) => (onGithub.has(e.name) ? `${e.name}: other bytes on GitHub` : `${e.name}: missing on GitHub`));
      const names = new Set(expected.map((e) => e.name));
      for (const a of downloaded.assets) if (!names.has(a.name)) diffs.push(`${a.name}: on GitHub but not in the manifest`);
      if (diffs.length) {
        throw new StepError('RELEASE_DRAFT_DIFFERS', `the release ${tag} on GitHub verifies, but does not hold exactly the files of this release: ${diffs.length} difference(s)`, {
          details: diffs.slice(0, 20),
          hint: 'run release-draft --replace to make the draft match this release, then verify-draft again',
        });
      }
      const verified = result.checks.filter((c) => c.status === 'verified').length;
      return {
        notes: [`${downloaded.assets.length} asset(s) downloaded from ${release.draft ? 'the draft' : 'the published release'}; ${verified} check(s) verified, identity ${result.identity.san}, trust root from ${source}`],
        data: {
          releaseId: release.id,
          url: release.url,
          draft: release.draft,
          assets: downloaded.assets.length,
          checks: verified,
          identity: result.identity,
          markdown: `- ${release.draft ? 'Draft' : 'Published'} GitHub release [${tag}](${release.url}) downloaded (${downloaded.assets.length} asset(s)) and verified as a consumer would: ${verified} check(s).`,
        },
      };
    },
  };
}

/** Step 14: the draft, verified as a consumer would before anything is published. */
export const verifyDraftStep: Step<ReleaseOptions> = consumerVerifyStep('draft');

/** The last step: the public release (and the registry's integrity), verified as a consumer would. */
export const verifyPublishedStep: Step<ReleaseOptions> = consumerVerifyStep('published');

/**
 * Publishes the verified draft: only when verify-draft succeeded on it (when the policy has a
 * signer), the tag on GitHub points at the planned commit, and the draft holds exactly the release
 * files. Re-running after it is published does nothing.
 */
export const undraftStep: Step<ReleaseOptions> = {
  name: 'undraft',
  description: 'publish the verified draft GitHub release at the tagged commit',
  async run(ctx) {
    const expected = requireFiles(ctx);
    const { plan } = ctx.manifest;
    let releaseId: number | undefined;
    if (ctx.options.policy.signer) {
      const verified = ctx.manifest.steps['verify-draft'];
      const id = verified?.data?.releaseId;
      if (verified?.state !== 'succeeded' || typeof id !== 'number') {
        throw new StepError('RELEASE_DRAFT_NOT_VERIFIED', `the draft of ${plan.tag} has not been verified (verify-draft ${verified ? verified.state : 'has not run'}); it was not published`, { hint: 'run verify-draft first: nothing is published that was not verified as a consumer would' });
      }
      releaseId = id;
    }
    const client = await clientFor(ctx);
    const prerelease = isPrerelease(ctx.options.policy, plan);
    const out = await undraft(client, { tag: plan.tag, commit: plan.commit, prerelease, expected, ...(releaseId !== undefined ? { releaseId } : {}) });
    return {
      notes: [out.state === 'published' ? `published ${plan.tag}${prerelease ? ' as a prerelease' : ''}: ${out.release.url}` : `${plan.tag} was already published with these files: nothing to do`],
      data: {
        repository: client.repository,
        tag: plan.tag,
        releaseId: out.release.id,
        url: out.release.url,
        state: out.state,
        prerelease,
        immutable: out.release.immutable,
        assets: expected.length,
        markdown: `- GitHub release [${plan.tag}](${out.release.url}) ${out.state === 'published' ? 'published' : 'was already published'}${prerelease ? ' (prerelease)' : ''} with ${expected.length} asset(s).`,
      },
    };
  },
};
