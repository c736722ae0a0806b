import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest, type Manifest } from '@mcp-release/manifest';
import type { Step } from '@mcp-release/pipeline';
import { releaseContext, runSteps } from '../../../../test/helpers/context.js';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { checksumsStep } from '../checksums.js';
import type { ReleaseOptions } from '../options.js';
import { mergeManifests, mergeReleaseParts } from './merge.js';

const MODELS = 'models.tar.gz';

/** A build-native step of one platform: its library and CLI, and the platform-independent models archive. */
function nativeStep(platform: string, models = 'the same models on every platform'): Step<ReleaseOptions> {
  return {
    name: 'build-native',
    description: `native build for ${platform}`,
    fingerprint: () => createHash('sha256').update(`native-${platform}`).digest('hex'),
    async run(ctx) {
      await writeFile(path.join(ctx.releaseDir, `libvmaf-${platform}.so`), `library for ${platform}`);
      await ctx.addArtifact(`libvmaf-${platform}.so`, 'native-library', platform);
      await writeFile(path.join(ctx.releaseDir, `vmaf-${platform}`), `cli for ${platform}`);
      await ctx.addArtifact(`vmaf-${platform}`, 'native-cli', platform);
      await writeFile(path.join(ctx.releaseDir, MODELS), models);
      await ctx.addArtifact(MODELS, 'models-archive', 'any');
      ctx.manifest.native = { ...(ctx.manifest.native ?? {}), [platform]: { project: { name: 'vmaf', version: '3.0.0' }, source: { commit: null, fingerprint: 'f'.repeat(64) }, buildtype: 'release', options: {} } };
    },
  };
}

const npmStep: Step<ReleaseOptions> = {
  name: 'build-npm',
  description: 'pack',
  async run(ctx) {
    await writeFile(path.join(ctx.releaseDir, 'vmaf-mcp-1.0.0.tgz'), 'tarball');
    await ctx.addArtifact('vmaf-mcp-1.0.0.tgz', 'npm-tarball', 'any');
  },
};

/** A part as a build job leaves it: <dir>/manifest.json and <dir>/release/. */
async function part(platform: string, steps: Step<ReleaseOptions>[]): Promise<{ dir: string; manifest: Manifest }> {
  const dir = await tempDir();
  const ctx = await releaseContext(dir, { platform });
  const r = await runSteps(steps, ctx);
  expect(r.error).toBeUndefined();
  return { dir, manifest: await readManifest(path.join(dir, 'manifest.json')) };
}

async function fourParts(): Promise<Array<{ dir: string; manifest: Manifest }>> {
  return [
    await part('linux-x64', [nativeStep('linux-x64')]),
    await part('linux-arm64', [nativeStep('linux-arm64')]),
    await part('darwin-arm64', [nativeStep('darwin-arm64')]),
    await part('linux-x64', [npmStep]),
  ];
}

function thrown(fn: () => unknown): Error & { code?: string; details?: string[] } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the call to fail, but it succeeded');
}

describe('mergeManifests', () => {
  it("unions the platforms' native artifacts and the npm part; a file built the same everywhere is listed once", async () => {
    const parts = await fourParts();
    const merged = mergeManifests(parts.map((p) => p.manifest));
    expect(merged.artifacts.map((a) => `${a.path} ${a.platform}`)).toEqual([
      'libvmaf-darwin-arm64.so darwin-arm64',
      'libvmaf-linux-arm64.so linux-arm64',
      'libvmaf-linux-x64.so linux-x64',
      'models.tar.gz any',
      'vmaf-darwin-arm64 darwin-arm64',
      'vmaf-linux-arm64 linux-arm64',
      'vmaf-linux-x64 linux-x64',
      'vmaf-mcp-1.0.0.tgz any',
    ]);
    expect(Object.keys(merged.native ?? {}).sort()).toEqual(['darwin-arm64', 'linux-arm64', 'linux-x64']);
    // build-native ran in three jobs: one record with every output, and no fingerprint of any one job.
    expect(merged.steps['build-native']).toEqual({ state: 'succeeded', outputs: merged.artifacts.filter((a) => a.producedBy === 'build-native').map((a) => a.path) });
    expect(merged.steps['build-npm']).toEqual(parts[3]?.manifest.steps['build-npm']);
    expect(merged.plan).toEqual(parts[0]?.manifest.plan);
    expect(mergeManifests([parts[0]?.manifest as Manifest])).toEqual(parts[0]?.manifest);
  });

  it('stops on one path with different digests in two parts, naming both', async () => {
    const a = await part('linux-x64', [nativeStep('linux-x64')]);
    const b = await part('linux-arm64', [nativeStep('linux-arm64', 'models archived differently')]);
    const err = thrown(() => mergeManifests([a.manifest, b.manifest], ['native-linux-x64', 'native-linux-arm64']));
    expect(err).toMatchObject({ code: 'MERGE_ARTIFACT_CONFLICT', message: `${MODELS} has different bytes in native-linux-x64 and native-linux-arm64` });
    expect(err.details).toHaveLength(2);
  });

  it('stops on one path recorded differently with the same bytes', async () => {
    const a = await part('linux-x64', [nativeStep('linux-x64')]);
    const b = structuredClone(a.manifest);
    const models = b.artifacts.find((x) => x.path === MODELS);
    if (models) models.kind = 'gate-report';
    expect(thrown(() => mergeManifests([a.manifest, b]))).toMatchObject({ code: 'MERGE_ARTIFACT_CONFLICT', message: expect.stringContaining('kind differ') });
  });

  it('refuses parts of different plans', async () => {
    const [a, b] = await fourParts();
    const other = structuredClone(b?.manifest as Manifest);
    other.plan.commit = 'd'.repeat(40);
    const err = thrown(() => mergeManifests([a?.manifest as Manifest, other]));
    expect(err).toMatchObject({ code: 'MERGE_PLAN_MISMATCH', message: expect.stringContaining('commit') });
    expect(err.details?.[0]).toContain(`plan.commit: "${'c'.repeat(40)}" in part 1, "${'d'.repeat(40)}" in part 2`);
  });

  it('refuses a part whose step failed, and a step that recorded different results', async () => {
    const [a, b] = await fourParts();
    const failed = structuredClone(b?.manifest as Manifest);
    failed.steps['build-native'] = { state: 'failed', error: { code: 'NATIVE_TESTS_FAILED', message: 'meson test failed' } };
    expect(thrown(() => mergeManifests([a?.manifest as Manifest, failed]))).toMatchObject({ code: 'MERGE_PART_INCOMPLETE', details: ['NATIVE_TESTS_FAILED: meson test failed'] });

    const withData = structuredClone(b?.manifest as Manifest);
    const aData = structuredClone(a?.manifest as Manifest);
    (aData.steps['build-native'] as { data?: unknown }).data = { tests: 3 };
    (withData.steps['build-native'] as { data?: unknown }).data = { tests: 4 };
    expect(thrown(() => mergeManifests([aData, withData]))).toMatchObject({ code: 'MERGE_STEP_CONFLICT' });
  });

  it('refuses one platform built twice with different results, and no parts at all', async () => {
    const a = await part('linux-x64', [nativeStep('linux-x64')]);
    const b = structuredClone(a.manifest);
    (b.native as NonNullable<Manifest['native']>)['linux-x64'] = { project: { name: 'vmaf', version: '3.0.1' }, source: { commit: null, fingerprint: 'e'.repeat(64) }, buildtype: 'release', options: {} };
    expect(thrown(() => mergeManifests([a.manifest, b]))).toMatchObject({ code: 'MERGE_NATIVE_CONFLICT', message: expect.stringContaining('linux-x64') });
    expect(thrown(() => mergeManifests([]))).toMatchObject({ code: 'MERGE_NO_PARTS' });
  });
});

describe('mergeReleaseParts', () => {
  it('writes one release folder and manifest that the next steps accept', async () => {
    const parts = await fourParts();
    const out = path.join(await tempDir(), 'merged');
    const result = await mergeReleaseParts({ parts: parts.map((p) => p.dir), outDir: out });
    expect(result.files).toBe(8);
    expect((await readdir(path.join(out, 'release'))).sort()).toEqual(result.manifest.artifacts.map((a) => a.path));
    expect(await readFile(path.join(out, 'release', 'vmaf-darwin-arm64'), 'utf8')).toBe('cli for darwin-arm64');
    expect(await readManifest(path.join(out, 'manifest.json'))).toEqual(result.manifest);
    // The merged folder is a release folder: the checksum step verifies every file against it.
    const ctx = await releaseContext(out, {}, { manifest: result.manifest });
    expect((await runSteps([checksumsStep], ctx)).error).toBeUndefined();
    expect(await readFile(path.join(out, 'release', 'SHA256SUMS'), 'utf8')).toContain('  libvmaf-linux-arm64.so\n');
  });

  it.each<[string, (parts: Array<{ dir: string }>) => Promise<void>, string]>([
    ['a file changed after its job recorded it', async (p) => writeFile(path.join(p[1]?.dir ?? '', 'release', 'vmaf-linux-arm64'), 'swapped'), 'MERGE_FILE_CHANGED'],
    ['a changed copy of a file another part also holds', async (p) => writeFile(path.join(p[2]?.dir ?? '', 'release', MODELS), 'swapped'), 'MERGE_FILE_CHANGED'],
    ['a stray file', async (p) => writeFile(path.join(p[0]?.dir ?? '', 'release', 'notes.txt'), 'who made me?'), 'MERGE_STRAY_FILE'],
    ['a symbolic link', async (p) => symlink('/etc/hostname', path.join(p[0]?.dir ?? '', 'release', 'link')), 'MERGE_UNSAFE_FILE'],
    ['a missing file', async (p) => rm(path.join(p[3]?.dir ?? '', 'release', 'vmaf-mcp-1.0.0.tgz')), 'MERGE_FILE_MISSING'],
  ])('refuses %s and leaves no merged folder', async (_what, spoil, code) => {
    const parts = await fourParts();
    await spoil(parts);
    const out = path.join(await tempDir(), 'merged');
    const err = await caught(() => mergeReleaseParts({ parts: parts.map((p) => p.dir), outDir: out }));
    expect(err).toMatchObject({ code });
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });

  it('refuses a folder that already holds a release, and leaves it as it was', async () => {
    const parts = await fourParts();
    const out = await tempDir();
    await mkdir(path.join(out, 'release'));
    await writeFile(path.join(out, 'release', 'old.tgz'), 'old');
    expect(await caught(() => mergeReleaseParts({ parts: parts.map((p) => p.dir), outDir: out }))).toMatchObject({ code: 'MERGE_OUT_NOT_EMPTY' });
    expect(await readdir(out)).toEqual(['release']);
    expect(await readdir(path.join(out, 'release'))).toEqual(['old.tgz']);
    expect(await caught(() => mergeReleaseParts({ parts: [], outDir: out }))).toMatchObject({ code: 'MERGE_NO_PARTS' });
  });
});
