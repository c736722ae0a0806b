import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newManifest, type ArtifactKind } from '@mcp-release/manifest';
import type { Step } from '@mcp-release/pipeline';
import { startGithub, type GithubLab } from '@mcp-release/lab';
import { releaseContext, runSteps, TEST_PLAN } from '../../../../../test/helpers/context.js';
import { tempDir } from '../../../../../test/helpers/tmp.js';
import type { ReleaseContext, ReleaseOptions } from '../../options.js';
import type { Policy } from '../../policy.js';
import { verifyRelease } from '../../verify/release.js';
import { buildRelease, startSigningLab, type SigningLab } from '../../verify/testing.js';
import { draftFolder, releaseDraftStep, undraftStep, verifyDraftStep } from './steps.js';

const OWNER = 'acme';
const RUN = { run_id: '201', sha: 'b'.repeat(40) };
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

let signing: SigningLab;
let github: GithubLab;
let octokit: Octokit;
let work: string;
/** A signed release folder, built once; each test copies it into its own release folder. */
let signed: string;
let trustedRoot: string;
let repoCount = 0;

beforeAll(async () => {
  signing = await startSigningLab();
  github = await startGithub();
  octokit = new Octokit({ baseUrl: github.url, auth: github.token, log: quiet });
  work = await mkdtemp(path.join(tmpdir(), 'github-steps-'));
  signed = path.join(work, 'signed');
  await buildRelease(await signing.signer(RUN), signed);
  trustedRoot = path.join(work, 'trusted_root.json');
  await signing.sigstore.writeTrustedRoot(trustedRoot);
});

afterAll(async () => {
  await github?.stop();
  await signing?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function kindOf(name: string): ArtifactKind {
  if (name === 'provenance.intoto.sigstore.json' || name === 'npm-provenance.sigstore.json') return 'provenance';
  if (name.endsWith('.sigstore.json')) return 'sigstore-bundle';
  if (name === 'SHA256SUMS') return 'checksums';
  if (name === 'verify.sh') return 'verify-script';
  if (name.endsWith('.tgz')) return 'npm-tarball';
  if (name.endsWith('.spdx.json')) return 'sbom-spdx';
  return 'native-library';
}

/** The signed release as the earlier steps would leave it: files in the release folder, each in the manifest. */
const signedRelease: Step<ReleaseOptions> = {
  name: 'sign',
  description: 'a signed release (fixture)',
  async run(ctx) {
    for (const name of await readdir(signed)) {
      await copyFile(path.join(signed, name), path.join(ctx.releaseDir, name));
      await ctx.addArtifact(name, kindOf(name), 'any');
    }
  },
};

interface Setup {
  ctx: ReleaseContext;
  repo: string;
}

async function setup(extra: { policy?: Partial<Policy>; replace?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Setup> {
  repoCount += 1;
  const repo = `server-${repoCount}`;
  const policy: Policy = {
    version: 1,
    packages: [{ path: 'packages/vmaf-mcp' }],
    release: { repository: `${OWNER}/${repo}` },
    signer: { repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', ref: 'refs/heads/main', issuer: signing.oidc.issuer },
    publish: { github: { releaseName: 'vmaf-mcp {version}' } },
    ...extra.policy,
  };
  const plan = { ...structuredClone(TEST_PLAN), commit: RUN.sha, tag: 'v0.1.0', packages: [{ name: '@mcp-release/vmaf-mcp', version: '0.1.0', path: 'packages/vmaf-mcp', distTag: 'latest' }] };
  const env = extra.env ?? { GITHUB_API_URL: github.url, GITHUB_TOKEN: github.token, MCP_RELEASE_TRUSTED_ROOT: trustedRoot };
  const ctx = await releaseContext(await tempDir(), { policy, ...(extra.replace ? ({ replace: true } as Partial<ReleaseOptions>) : {}) }, { manifest: newManifest(plan), deps: { env } });
  const made = await runSteps([signedRelease], ctx);
  expect(made.error).toBeUndefined();
  return { ctx, repo };
}

const releasesOf = (repo: string) => github.state().releases.filter((r) => r.repo === repo);

async function tagPlannedCommit(s: Setup): Promise<void> {
  await octokit.rest.git.createRef({ owner: OWNER, repo: s.repo, ref: `refs/tags/${s.ctx.manifest.plan.tag}`, sha: s.ctx.manifest.plan.commit });
}

describe('release-draft, verify-draft and undraft', () => {
  it('publish exactly the signed files, verified from the draft as downloaded; a re-run changes nothing', async () => {
    const s = await setup();
    const files = s.ctx.manifest.artifacts.map((a) => a.path).sort();
    const first = await runSteps([releaseDraftStep, verifyDraftStep], s.ctx);
    expect(first.error).toBeUndefined();
    const [rel] = releasesOf(s.repo);
    expect(rel).toMatchObject({ draft: true, tag_name: 'v0.1.0', target_commitish: RUN.sha, name: 'vmaf-mcp 0.1.0', prerelease: false });
    expect(rel?.body).toContain('| `@mcp-release/vmaf-mcp` | 0.1.0 | latest |');
    expect(rel?.body).toContain(`sh verify.sh --tag v0.1.0 --repo ${OWNER}/${s.repo}`);
    expect(rel?.assets.map((a) => a.name).sort()).toEqual(files);
    expect(s.ctx.manifest.steps['release-draft']?.data).toMatchObject({ releaseId: rel?.id, url: expect.stringContaining('/releases/tag/untagged-'), state: 'created', assets: files.length, uploaded: files.length, skipped: 0, replaced: 0 });
    expect(s.ctx.manifest.steps['release-draft']?.data?.markdown).toMatch(/^- Draft GitHub release \[v0\.1\.0\]\(.+\) \(id \d+, created\): \d+ asset\(s\); \d+ uploaded/);
    expect(s.ctx.manifest.steps['verify-draft']?.data).toMatchObject({ releaseId: rel?.id, draft: true, assets: files.length, identity: { san: expect.stringContaining('mcp-release/vmaf-mcp/\\.github/workflows/release\\.yml@') } });
    // the downloaded draft, byte for byte the release folder
    const dir = draftFolder(s.ctx);
    expect((await readdir(dir)).sort()).toEqual(files);
    for (const f of files) expect((await readFile(path.join(dir, f))).equals(await readFile(path.join(s.ctx.releaseDir, f))), f).toBe(true);
    expect(rel?.assets.every((a) => a.download_count === 1)).toBe(true);

    await tagPlannedCommit(s);
    const published = await runSteps([undraftStep], s.ctx);
    expect(published.error).toBeUndefined();
    expect(releasesOf(s.repo)[0]).toMatchObject({ id: rel?.id, draft: false, tag_name: 'v0.1.0' });
    expect(s.ctx.manifest.steps.undraft?.data).toMatchObject({ state: 'published', releaseId: rel?.id, prerelease: false, url: expect.stringContaining('/releases/tag/v0.1.0') });

    const again = await runSteps([releaseDraftStep, verifyDraftStep, undraftStep], s.ctx);
    expect(again.error).toBeUndefined();
    expect(s.ctx.manifest.steps['release-draft']?.data).toMatchObject({ state: 'already-published', uploaded: 0 });
    expect(s.ctx.manifest.steps['verify-draft']?.data).toMatchObject({ draft: false });
    expect(s.ctx.manifest.steps.undraft?.data).toMatchObject({ state: 'already-published' });
    expect(releasesOf(s.repo)).toHaveLength(1);
  });

  it('a re-run of release-draft skips every asset already on the draft', async () => {
    const s = await setup();
    expect((await runSteps([releaseDraftStep], s.ctx)).error).toBeUndefined();
    expect((await runSteps([releaseDraftStep], s.ctx)).error).toBeUndefined();
    expect(s.ctx.manifest.steps['release-draft']?.data).toMatchObject({ state: 'reused', uploaded: 0, skipped: s.ctx.manifest.artifacts.length, replaced: 0 });
  });

  it('a tampered asset on the draft fails verify-draft, and undraft then refuses; --replace restores it', async () => {
    const s = await setup();
    expect((await runSteps([releaseDraftStep], s.ctx)).error).toBeUndefined();
    const [rel] = releasesOf(s.repo);
    const victim = rel?.assets.find((a) => a.name === 'libvmaf.so');
    const bytes = await readFile(path.join(s.ctx.releaseDir, 'libvmaf.so'));
    bytes[100] = (bytes[100] as number) ^ 0xff;
    await octokit.rest.repos.deleteReleaseAsset({ owner: OWNER, repo: s.repo, asset_id: victim?.id as number });
    const upload = (await octokit.rest.repos.getRelease({ owner: OWNER, repo: s.repo, release_id: rel?.id as number })).data.upload_url;
    await octokit.rest.repos.uploadReleaseAsset({ owner: OWNER, repo: s.repo, release_id: rel?.id as number, url: upload, name: 'libvmaf.so', data: bytes as unknown as string, headers: { 'content-type': 'application/octet-stream', 'content-length': bytes.length } });

    const verified = await runSteps([verifyDraftStep], s.ctx);
    expect(verified.error).toMatchObject({ code: 'RELEASE_DRAFT_NOT_VERIFIED', hint: expect.stringContaining('release-draft --replace') });
    expect((verified.error as { details: string[] }).details.join('\n')).toMatch(/libvmaf\.so/);
    // the local release folder is intact: what failed is what GitHub serves
    const local = await verifyRelease({ folder: s.ctx.releaseDir, policy: { repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', refPattern: 'refs/heads/main', issuer: signing.oidc.issuer }, trustedRoot: signing.sigstore.trustedRoot });
    expect(local.status).toBe('verified');

    await tagPlannedCommit(s);
    expect((await runSteps([undraftStep], s.ctx)).error).toMatchObject({ code: 'RELEASE_DRAFT_NOT_VERIFIED' });
    expect(releasesOf(s.repo)[0]?.draft).toBe(true);

    const conflict = await runSteps([releaseDraftStep], s.ctx);
    expect(conflict.error).toMatchObject({ code: 'RELEASE_ASSET_CONFLICT', message: expect.stringContaining('libvmaf.so') });
    (s.ctx.options as ReleaseOptions & { replace?: boolean }).replace = true;
    expect((await runSteps([releaseDraftStep], s.ctx)).error).toBeUndefined();
    expect(s.ctx.manifest.steps['release-draft']?.data).toMatchObject({ replaced: 1, replacedAssets: ['libvmaf.so'] });
    expect((await runSteps([verifyDraftStep, undraftStep], s.ctx)).error).toBeUndefined();
    expect(releasesOf(s.repo)[0]?.draft).toBe(false);
  });

  it('a draft changed by release-draft must be verified again before undraft publishes it', async () => {
    const s = await setup();
    expect((await runSteps([releaseDraftStep, verifyDraftStep], s.ctx)).error).toBeUndefined();
    const [rel] = releasesOf(s.repo);
    const stray = Buffer.from('not a release file\n');
    const upload = (await octokit.rest.repos.getRelease({ owner: OWNER, repo: s.repo, release_id: rel?.id as number })).data.upload_url;
    await octokit.rest.repos.uploadReleaseAsset({ owner: OWNER, repo: s.repo, release_id: rel?.id as number, url: upload, name: 'notes.txt', data: stray as unknown as string, headers: { 'content-type': 'text/plain', 'content-length': stray.length } });
    (s.ctx.options as ReleaseOptions & { replace?: boolean }).replace = true;
    expect((await runSteps([releaseDraftStep], s.ctx)).error).toBeUndefined();
    expect(s.ctx.manifest.steps['release-draft']?.data).toMatchObject({ deleted: 1, deletedAssets: ['notes.txt'], uploaded: 0 });
    await tagPlannedCommit(s);
    expect((await runSteps([undraftStep], s.ctx)).error).toMatchObject({ code: 'RELEASE_DRAFT_NOT_VERIFIED', message: expect.stringContaining('has not run') });
    expect((await runSteps([verifyDraftStep, undraftStep], s.ctx)).error).toBeUndefined();
    expect(releasesOf(s.repo)[0]).toMatchObject({ draft: false });
  });

  it('undraft refuses a draft that was not verified, and a tag on another commit', async () => {
    const s = await setup();
    expect((await runSteps([releaseDraftStep], s.ctx)).error).toBeUndefined();
    await tagPlannedCommit(s);
    expect((await runSteps([undraftStep], s.ctx)).error).toMatchObject({ code: 'RELEASE_DRAFT_NOT_VERIFIED', message: expect.stringContaining('has not run') });

    const t = await setup();
    expect((await runSteps([releaseDraftStep, verifyDraftStep], t.ctx)).error).toBeUndefined();
    await octokit.rest.git.createRef({ owner: OWNER, repo: t.repo, ref: 'refs/tags/v0.1.0', sha: 'e'.repeat(40) });
    expect((await runSteps([undraftStep], t.ctx)).error).toMatchObject({ code: 'RELEASE_TAG_MISMATCH' });
    expect(releasesOf(t.repo)[0]?.draft).toBe(true);
  });

  it('marks a prerelease version as a prerelease (policy auto)', async () => {
    const s = await setup();
    s.ctx.manifest.plan.tag = 'v0.2.0-rc.1';
    (s.ctx.manifest.plan.packages[0] as { version: string }).version = '0.2.0-rc.1';
    expect((await runSteps([releaseDraftStep, verifyDraftStep], s.ctx)).error).toBeUndefined();
    await tagPlannedCommit(s);
    expect((await runSteps([undraftStep], s.ctx)).error).toBeUndefined();
    expect(releasesOf(s.repo)[0]).toMatchObject({ draft: false, prerelease: true, make_latest: 'false', name: 'vmaf-mcp 0.2.0-rc.1' });
  });

  it('fails loudly without a token or a repository, and skips verify-draft without a signer', async () => {
    const noToken = await setup({ env: { GITHUB_API_URL: github.url } });
    expect((await runSteps([releaseDraftStep], noToken.ctx)).error).toMatchObject({ code: 'GITHUB_TOKEN_MISSING' });
    const noRepo = await setup({ policy: { release: {}, signer: undefined } });
    expect((await runSteps([releaseDraftStep], noRepo.ctx)).error).toMatchObject({ code: 'GITHUB_REPOSITORY_MISSING' });
    const run = await runSteps([verifyDraftStep], noRepo.ctx);
    expect(run.steps[0]).toMatchObject({ state: 'skipped', reason: expect.stringContaining('signer') });
    expect(github.state().releases.filter((r) => r.repo === noToken.repo || r.repo === noRepo.repo)).toEqual([]);
  });
});
