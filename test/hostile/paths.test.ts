/**
 * Artifact names with `..`, absolute paths, NUL bytes, lone surrogates and bytes that are not
 * UTF-8. The manifest refuses them as paths (hash.test.ts, manifest-edits.test.ts); here: the
 * GitHub release upload refuses them as asset names before it sends a single request, the
 * release-draft step refuses names that are safe paths but not release assets, and a file on disk
 * whose name is not UTF-8 stops checksums and is never reported as verified.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithub, type GithubLab } from '@mcp-release/lab';
import { checksumsStep } from '../../packages/steps/src/checksums.js';
import { createGithubReleaseClient } from '../../packages/steps/src/publish/github/client.js';
import { assetNameProblem, uploadAssets, type ReleaseFile } from '../../packages/steps/src/publish/github/release.js';
import { releaseDraftStep } from '../../packages/steps/src/publish/github/steps.js';
import { verifyRelease } from '../../packages/steps/src/verify/release.js';
import { buildRelease, startSigningLab } from '../../packages/steps/src/verify/testing.js';
import { releaseContext, runSteps } from '../helpers/context.js';
import { caught, tempDir } from '../helpers/tmp.js';
import { buildFiles } from './release.js';

let github: GithubLab;
beforeAll(async () => {
  github = await startGithub();
});
afterAll(() => github?.stop());

const BAD_ASSET_NAMES: Array<[string, string]> = [
  ['..', 'starts with a dot'],
  ['../libvmaf.so', 'has a folder in it'],
  ['/etc/passwd', 'has a folder in it'],
  ['C:\\x.dll', 'has a folder in it'],
  ['lib\0vmaf.so', 'has control characters'],
  ['lib\nvmaf.so', 'has control characters'],
  ['lib\u007fvmaf.so', 'has control characters'],
  ['lib\ud800vmaf.so', 'is not valid UTF-8 text'],
  ['vmaf\udc00', 'is not valid UTF-8 text'],
  ['.hidden', 'starts with a dot'],
  ['', 'is empty'],
  ['a'.repeat(256), 'longer than 255'],
];

describe('release asset names', () => {
  it.each(BAD_ASSET_NAMES)('%j is refused (%s) before any request reaches GitHub', async (name, why) => {
    expect(assetNameProblem(name)).toContain(why);
    const client = createGithubReleaseClient({ repository: 'acme/paths', token: github.token, baseUrl: github.url, retry: { delayMs: 1, sleep: async () => undefined }, onProgress: () => undefined });
    const dir = await tempDir();
    await writeFile(path.join(dir, 'ok.bin'), 'x');
    const files: ReleaseFile[] = [
      { name: 'ok.bin', file: path.join(dir, 'ok.bin'), size: 1, sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881' },
      { name, file: path.join(dir, 'ok.bin'), size: 1, sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881' },
    ];
    const before = github.service.log.length;
    const err = await caught(() => uploadAssets(client, { id: 1, uploadUrl: `${github.url}/repos/acme/paths/releases/1/assets{?name,label}`, draft: true, tag: 'v1.0.0' }, files));
    expect(err).toMatchObject({ code: 'RELEASE_ASSET_NAME', hint: expect.stringContaining('rename it') });
    expect(github.service.log.length).toBe(before);
  });

  it.each([['native/libvmaf.so'], ['.libvmaf.so']])('release-draft refuses the manifest path %j (safe as a path, not as an asset) before it talks to GitHub', async (name) => {
    const dir = await tempDir();
    const ctx = await releaseContext(dir, { policy: { version: 1, packages: [{ path: '.' }], release: { repository: 'acme/paths' } } }, { deps: { env: { GITHUB_API_URL: github.url, GITHUB_TOKEN: github.token } } });
    await mkdir(path.join(ctx.releaseDir, 'native'));
    expect((await runSteps([buildFiles([{ name, content: 'x' }])], ctx)).error).toBeUndefined();
    const before = github.service.log.length;
    const r = await runSteps([releaseDraftStep], ctx);
    expect(r.error).toMatchObject({ code: 'RELEASE_ASSET_NAME', message: expect.stringContaining(JSON.stringify(name)) });
    expect(github.service.log.length).toBe(before);
    expect(github.state().releases.filter((x) => x.repo === 'paths')).toEqual([]);
  });
});

describe('a file whose name is not UTF-8 in the release folder', () => {
  const raw = Buffer.from([0x6c, 0x69, 0x62, 0xff, 0xfe, 0x2e, 0x73, 0x6f]); // "lib", two bytes that are not UTF-8, ".so"

  it('stops checksums as a file no step produced, and no SHA256SUMS is written', async () => {
    const ctx = await releaseContext(await tempDir());
    expect((await runSteps([buildFiles([{ name: 'libvmaf.so', content: 'x' }])], ctx)).error).toBeUndefined();
    await writeFile(Buffer.concat([Buffer.from(`${ctx.releaseDir}/`), raw]), 'smuggled');
    const r = await runSteps([checksumsStep], ctx);
    expect(r.error).toMatchObject({ code: 'RELEASE_STRAY_FILE', hint: expect.stringContaining('remove it') });
    expect(await readdir(ctx.releaseDir)).not.toContain('SHA256SUMS');
  });

  it('is never verified: a signed release that verifies does not once the file is smuggled in', async () => {
    const signing = await startSigningLab();
    try {
      const dir = await tempDir();
      await buildRelease(await signing.signer(), dir);
      const policy = { repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', refPattern: 'refs/heads/main', issuer: signing.oidc.issuer };
      expect((await verifyRelease({ folder: dir, policy, trustedRoot: signing.sigstore.trustedRoot })).status).toBe('verified');
      await writeFile(Buffer.concat([Buffer.from(`${dir}/`), raw]), 'smuggled');
      const result = await verifyRelease({ folder: dir, policy, trustedRoot: signing.sigstore.trustedRoot });
      expect(result.status).not.toBe('verified');
      const named = result.checks.filter((c) => c.file?.startsWith('lib\ufffd'));
      expect(named.length).toBeGreaterThan(0);
      for (const c of named) expect(c).toMatchObject({ status: expect.stringMatching(/^(failed|error)$/), code: expect.any(String) });
    } finally {
      await signing.stop();
    }
  });
});
