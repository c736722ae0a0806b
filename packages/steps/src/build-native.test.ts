import { execFileSync } from 'node:child_process';
import { cp, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { releaseContext, runSteps } from '../../../test/helpers/context.js';
import { REPO_ROOT, SHARED_FIXTURES, tempDir } from '../../../test/helpers/tmp.js';
import { buildNativeStep } from './build-native.js';

const FIXTURE = path.join(REPO_ROOT, 'test/fixtures/native');
const native = { source: FIXTURE, options: { enable_float: 'true' }, library: 'minivmaf', cli: 'minivmaf', models: 'model' };

/** A tiny meson project whose own test fails. */
async function failingProject(dir: string): Promise<string> {
  const src = path.join(dir, 'src');
  await mkdir(path.join(src, 'model'), { recursive: true });
  await writeFile(path.join(src, 'model', 'm.json'), '{}\n');
  await writeFile(path.join(src, 'lib.c'), 'int answer(void) { return 41; }\n');
  await writeFile(path.join(src, 'main.c'), 'int answer(void);\nint main(void) { return answer() == 42 ? 0 : 1; }\n');
  await writeFile(
    path.join(src, 'meson.build'),
    "project('broken', 'c', version: '1.0.0')\nlib = shared_library('broken', 'lib.c', install: true)\nexe = executable('broken', 'main.c', link_with: lib, install: true)\ntest('answer is 42', exe)\n",
  );
  return src;
}

describe('build-native', () => {
  it('builds the fixture with meson, passes meson test, stages the library, the CLI and models, and records the effective options', async () => {
    const out = await tempDir();
    const ctx = await releaseContext(out, { native });
    const result = await runSteps([buildNativeStep], ctx);
    expect(result.error).toBeUndefined();
    expect(ctx.manifest.artifacts.map((a) => [a.path, a.kind]).sort()).toEqual([
      ['libminivmaf-linux-x64.so.0.1.0', 'native-library'],
      ['minivmaf-linux-x64', 'native-cli'],
      ['models.tar.gz', 'models-archive'],
    ]);
    const lib = ctx.manifest.artifacts.find((a) => a.kind === 'native-library');
    expect(lib?.meta).toMatchObject({ soname: 'libminivmaf.so.0', links: ['libminivmaf.so', 'libminivmaf.so.0'] });
    const build = ctx.manifest.native?.['linux-x64'];
    expect(build?.options).toMatchObject({ enable_float: true, enable_tools: true });
    expect(build?.project).toEqual({ name: 'minivmaf', version: '0.1.0' });
    expect(build?.compilers?.[0]).toMatchObject({ language: 'c', id: 'gcc' });
    expect(result.steps[0]?.notes[0]).toMatch(/2 native test\(s\) passed/);

    // The staged CLI is the real thing: installed as a consumer would (the library under its recorded
    // soname), it scores a Netflix pair (10-bit src01) to the vmaf CLI's numbers.
    const libdir = path.join(out, 'lib');
    await mkdir(libdir);
    await symlink(path.join(ctx.releaseDir, lib?.path as string), path.join(libdir, (lib?.meta as { soname: string }).soname));
    const y = (f: string): string => path.join(SHARED_FIXTURES, 'yuv', f);
    const json = execFileSync(
      path.join(ctx.releaseDir, 'minivmaf-linux-x64'),
      ['-r', y('src01_hrc00_576x324.yuv420p10le.yuv'), '-d', y('src01_hrc01_576x324.yuv420p10le.yuv'), '-w', '576', '-h', '324', '-p', '420', '-b', '10', '--feature', 'psnr', '--json', '-q'],
      { env: { ...process.env, LD_LIBRARY_PATH: libdir }, encoding: 'utf8' },
    );
    expect(JSON.parse(json).pooled_metrics.psnr_y.mean).toBeCloseTo(32.571452, 6);
  });

  it('fails clearly on a missing source tree', async () => {
    const out = await tempDir();
    const ctx = await releaseContext(out, { native: { ...native, source: path.join(out, 'nope') } });
    const r = await runSteps([buildNativeStep], ctx);
    expect(r.error).toMatchObject({ code: 'NATIVE_SOURCE_MISSING', hint: expect.stringContaining('--native-source') });
  });

  it('shows the meson log excerpt when configure fails', async () => {
    const out = await tempDir();
    const ctx = await releaseContext(out, { native: { ...native, options: { no_such_option: 'true' } } });
    const r = await runSteps([buildNativeStep], ctx);
    expect(r.error).toMatchObject({ code: 'NATIVE_CONFIGURE_FAILED' });
    expect((r.error as { details: string[] }).details.join('\n')).toMatch(/no_such_option/);
    expect(await readdir(ctx.releaseDir)).toEqual([]);
  });

  it('stops on a failing meson test and stages nothing', async () => {
    const out = await tempDir();
    const src = await failingProject(out);
    const ctx = await releaseContext(out, { native: { source: src } });
    const r = await runSteps([buildNativeStep], ctx);
    expect(r.error).toMatchObject({ code: 'NATIVE_TESTS_FAILED', hint: expect.stringContaining('testlog.txt') });
    expect((r.error as { details: string[] }).details.join('\n')).toMatch(/answer is 42/);
    expect(await readdir(ctx.releaseDir)).toEqual([]);
    expect(ctx.manifest.artifacts).toEqual([]);
    expect(ctx.manifest.steps['build-native']?.state).toBe('failed');
  });

  it('names the targets when the configured one does not exist', async () => {
    const out = await tempDir();
    const src = path.join(out, 'copy');
    await cp(FIXTURE, src, { recursive: true });
    const ctx = await releaseContext(out, { native: { ...native, source: src, cli: 'vmaf' } });
    const r = await runSteps([buildNativeStep], ctx);
    expect(r.error).toMatchObject({ code: 'NATIVE_TARGET_MISSING', details: [expect.stringContaining('minivmaf')] });
  });
});
