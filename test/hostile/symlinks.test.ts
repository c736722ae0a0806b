/**
 * Symlinks that point out of the release folder, with exactly the bytes the manifest records, so
 * that only the path check can catch them: checksums, sign and release-draft refuse them with
 * UNSAFE_PATH; the linked file is never hashed into SHA256SUMS, never signed, never uploaded, and
 * nothing is written next to it. The release verifier fails a symlink in a downloaded release.
 * (checksums.test.ts covers a stray symlink the manifest does not list; hash.test.ts resolveInside.)
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithub, type GithubLab } from '@mcp-release/lab';
import { checksumsStep } from '../../packages/steps/src/checksums.js';
import type { ReleaseContext } from '../../packages/steps/src/options.js';
import { releaseDraftStep } from '../../packages/steps/src/publish/github/steps.js';
import { signStep } from '../../packages/steps/src/sign.js';
import { verifyRelease } from '../../packages/steps/src/verify/release.js';
import { buildRelease, startSigningLab } from '../../packages/steps/src/verify/testing.js';
import { releaseContext, runSteps } from '../helpers/context.js';
import { tempDir } from '../helpers/tmp.js';
import { buildFiles, startReleaseLab, type ReleaseLab } from './release.js';

let work: string;
let lab: ReleaseLab;
let github: GithubLab;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'mcp-release-hostile-links-'));
  lab = await startReleaseLab(work);
  github = await startGithub();
});

afterAll(async () => {
  await github?.stop();
  await lab?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const LIBRARY = 'the real library bytes';

/** Everything under a folder, with contents: to prove nothing was written there. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[path.relative(dir, path.join(e.parentPath, e.name))] = await readFile(path.join(e.parentPath, e.name), 'utf8');
  }
  return out;
}

/**
 * A built release (libvmaf.so and the models, in native/ for the folder case, recorded by build-npm)
 * where libvmaf.so, or the native/ folder, is then replaced by a symlink to a copy outside.
 */
async function linkedRelease(which: 'file' | 'folder'): Promise<{ ctx: ReleaseContext; outside: string }> {
  const dir = await tempDir();
  const outside = await tempDir('mcp-release-outside-');
  const ctx = await releaseContext(dir, { policy: { ...lab.policy, release: { repository: 'acme/links' } } }, { deps: { env: { ...lab.env, GITHUB_API_URL: github.url, GITHUB_TOKEN: github.token } } });
  await mkdir(path.join(ctx.releaseDir, 'native'));
  const models = which === 'file' ? 'models.tar.gz' : 'native/models.tar.gz';
  expect((await runSteps([buildFiles([{ name: 'libvmaf.so', content: LIBRARY }, { name: models, content: 'models' }])], ctx)).error).toBeUndefined();
  if (which === 'file') {
    await writeFile(path.join(outside, 'libvmaf.so'), LIBRARY);
    await unlink(path.join(ctx.releaseDir, 'libvmaf.so'));
    await symlink(path.join(outside, 'libvmaf.so'), path.join(ctx.releaseDir, 'libvmaf.so'));
  } else {
    await copyFile(path.join(ctx.releaseDir, 'native', 'models.tar.gz'), path.join(outside, 'models.tar.gz'));
    await rm(path.join(ctx.releaseDir, 'native'), { recursive: true });
    await symlink(outside, path.join(ctx.releaseDir, 'native'));
  }
  return { ctx, outside };
}

describe.each(['file', 'folder'] as const)('a recorded release %s replaced by a symlink out of the release folder', (which) => {
  it('checksums refuses it (UNSAFE_PATH) and writes no SHA256SUMS', async () => {
    const { ctx, outside } = await linkedRelease(which);
    const before = await snapshot(outside);
    const r = await runSteps([checksumsStep], ctx);
    expect(r.error).toMatchObject({ code: 'UNSAFE_PATH', message: expect.stringContaining('outside the release folder'), hint: expect.stringContaining('copy the real file') });
    expect(await readdir(ctx.releaseDir)).not.toContain('SHA256SUMS');
    expect(await snapshot(outside)).toEqual(before);
  });

  it('sign refuses it: the linked file is never signed, and no bundle is recorded or written beside it', async () => {
    const { ctx, outside } = await linkedRelease(which);
    const before = await snapshot(outside);
    const r = await runSteps([signStep], ctx);
    expect(r.error).toMatchObject({ code: 'UNSAFE_PATH' });
    expect(ctx.manifest.artifacts.filter((a) => a.kind === 'sigstore-bundle')).toEqual([]);
    const linked = which === 'file' ? 'libvmaf.so' : 'native/models.tar.gz';
    expect((await readdir(ctx.releaseDir, { recursive: true })).map(String)).not.toContain(`${linked}.sigstore.json`);
    expect(await snapshot(outside)).toEqual(before);
  });

  // release assets are flat, so a release with a folder never gets as far as the path check
  it('release-draft refuses it before any request reaches GitHub', async () => {
    const { ctx } = await linkedRelease(which);
    const before = github.service.log.length;
    const r = await runSteps([releaseDraftStep], ctx);
    expect(r.error).toMatchObject({ code: which === 'file' ? 'UNSAFE_PATH' : 'RELEASE_ASSET_NAME' });
    expect(github.service.log.length).toBe(before);
    expect(github.state().releases.filter((x) => x.repo === 'links')).toEqual([]);
  });
});

describe('a downloaded release with a symlink in it', () => {
  it('is not verified: the link is named, even when it points at a copy of the genuine file', async () => {
    const signing = await startSigningLab();
    try {
      const dir = await tempDir();
      const outside = await tempDir('mcp-release-outside-');
      await buildRelease(await signing.signer(), dir);
      const policy = { repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', refPattern: 'refs/heads/main', issuer: signing.oidc.issuer };
      await copyFile(path.join(dir, 'libvmaf.so'), path.join(outside, 'libvmaf.so'));
      await unlink(path.join(dir, 'libvmaf.so'));
      await symlink(path.join(outside, 'libvmaf.so'), path.join(dir, 'libvmaf.so'));
      const result = await verifyRelease({ folder: dir, policy, trustedRoot: signing.sigstore.trustedRoot });
      expect(result.status).toBe('not-verified');
      expect(result.checks).toContainEqual(expect.objectContaining({ name: 'folder', file: 'libvmaf.so', status: 'failed', code: 'VERIFY_NOT_A_FILE' }));
    } finally {
      await signing.stop();
    }
  });
});
