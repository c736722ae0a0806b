import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { caught, tempDir } from '../../../test/helpers/tmp.js';
import { deterministicTarGz, mesonOptionArgs, parseCompilers, pickTarget, releaseName, type MesonTarget } from './native.js';

describe('native helpers', () => {
  it('names release files with the platform, keeping the library suffix', () => {
    expect(releaseName('/x/libvmaf.so.3.2.0', 'linux-x64')).toBe('libvmaf-linux-x64.so.3.2.0');
    expect(releaseName('/x/libvmaf.3.dylib', 'darwin-arm64')).toBe('libvmaf-darwin-arm64.3.dylib');
    expect(releaseName('/x/vmaf', 'linux-arm64')).toBe('vmaf-linux-arm64');
  });

  it('sorts meson options', () => {
    expect(mesonOptionArgs({ enable_mcp: true, enable_float: 'true', threads: 4 })).toEqual(['-Denable_float=true', '-Denable_mcp=true', '-Dthreads=4']);
  });

  it('reads compilers from the meson log', () => {
    const log = 'C compiler for the host machine: cc (gcc 12.2.0 "cc (Debian 12.2.0-14+deb12u1) 12.2.0")\nC++ compiler for the host machine: c++ (gcc 12.2.0 "c++ (Debian 12.2.0-14+deb12u1) 12.2.0")\n';
    expect(parseCompilers(log)).toEqual([
      { language: 'c', id: 'gcc', version: '12.2.0' },
      { language: 'c++', id: 'gcc', version: '12.2.0' },
    ]);
  });

  it('picks targets by type, so that three targets called vmaf are not ambiguous', () => {
    const t = (name: string, type: string, installed = true): MesonTarget => ({ name, type, installed, filename: [] });
    const targets = [t('vmaf', 'shared library'), t('vmaf', 'static library'), t('vmaf', 'executable'), t('test_x', 'executable', false)];
    expect(pickTarget(targets, 'executable', undefined, 'cli').type).toBe('executable');
    expect(pickTarget(targets, 'shared library', 'vmaf', 'library').type).toBe('shared library');
    expect(() => pickTarget([...targets, t('other', 'executable')], 'executable', undefined, 'cli')).toThrow(expect.objectContaining({ code: 'NATIVE_TARGET_AMBIGUOUS' }));
  });

  it('writes the same models.tar.gz whatever the file times and modes were', async () => {
    const a = await tempDir();
    const src = path.join(a, 'model');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'b.json'), '{"b":1}\n');
    await writeFile(path.join(src, 'sub', 'a.pkl'), 'pickle');
    const first = path.join(a, 'one.tar.gz');
    const entries = await deterministicTarGz(src, first, { prefix: 'model', epoch: 1700000000, staging: path.join(a, 's1') });
    expect(entries.map((e) => e.path)).toEqual(['model/b.json', 'model/sub/a.pkl']);

    await utimes(path.join(src, 'b.json'), new Date(), new Date());
    await chmod(path.join(src, 'sub', 'a.pkl'), 0o664);
    const second = path.join(a, 'two.tar.gz');
    await deterministicTarGz(src, second, { prefix: 'model', epoch: 1700000000, staging: path.join(a, 's2') });
    expect((await readFile(second)).equals(await readFile(first))).toBe(true);

    const listing = execFileSync('tar', ['-tzvf', first], { encoding: 'utf8' });
    expect(listing).toMatch(/-rw-r--r-- 0\/0 .* 2023-11-14 \d\d:\d\d model\/b\.json/);
    expect((await readFile(first))[9]).toBe(3);
  });

  it('refuses a models folder that links outside itself, and an empty one', async () => {
    const a = await tempDir();
    const src = path.join(a, 'model');
    await mkdir(src);
    expect(await caught(() => deterministicTarGz(src, path.join(a, 'x.tgz'), { prefix: 'model', epoch: 0, staging: path.join(a, 's') }))).toMatchObject({ code: 'NATIVE_MODELS_EMPTY' });
    await writeFile(path.join(a, 'secret'), 'x');
    await symlink(path.join(a, 'secret'), path.join(src, 'leak.json'));
    expect(await caught(() => deterministicTarGz(src, path.join(a, 'x.tgz'), { prefix: 'model', epoch: 0, staging: path.join(a, 's') }))).toMatchObject({ code: 'UNSAFE_PATH' });
  });
});
