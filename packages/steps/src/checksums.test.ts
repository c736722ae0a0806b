import { execFileSync } from 'node:child_process';
import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Step } from '@mcp-release/pipeline';
import { releaseContext, runSteps } from '../../../test/helpers/context.js';
import { tempDir } from '../../../test/helpers/tmp.js';
import { checksumsStep, renderChecksums } from './checksums.js';
import type { ReleaseOptions } from './options.js';

/** A build step that puts the given files into the release folder. */
function files(entries: Record<string, string | Buffer>): Step<ReleaseOptions> {
  return {
    name: 'build-npm',
    description: 'test files',
    async run(ctx) {
      for (const [name, content] of Object.entries(entries)) {
        await writeFile(path.join(ctx.releaseDir, name), content);
        await ctx.addArtifact(name, 'npm-tarball', 'any');
      }
    },
  };
}

const sample = { 'vmaf-mcp-1.0.0.tgz': Buffer.from([1, 2, 3]), 'libvmaf-linux-x64.so.3': 'elf', 'with space.txt': 'x' };

describe('checksums', () => {
  it('writes SHA256SUMS that sha256sum -c accepts, sorted, with names relative to the release folder', async () => {
    const ctx = await releaseContext(await tempDir());
    const r = await runSteps([files(sample), checksumsStep], ctx);
    expect(r.error).toBeUndefined();
    const text = await readFile(path.join(ctx.releaseDir, 'SHA256SUMS'), 'utf8');
    expect(text.trim().split('\n').map((l) => l.slice(66))).toEqual(['libvmaf-linux-x64.so.3', 'vmaf-mcp-1.0.0.tgz', 'with space.txt']);
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: ctx.releaseDir, encoding: 'utf8' })).toContain('vmaf-mcp-1.0.0.tgz: OK');
    expect(ctx.manifest.artifacts.find((a) => a.path === 'SHA256SUMS')?.kind).toBe('checksums');
    expect(renderChecksums([{ path: 'b', sha256: '2' }, { path: 'a', sha256: '1' }])).toBe('1  a\n2  b\n');
  });

  it('refuses a file that changed after its step recorded it, and writes nothing', async () => {
    const ctx = await releaseContext(await tempDir());
    await runSteps([files(sample)], ctx);
    await writeFile(path.join(ctx.releaseDir, 'vmaf-mcp-1.0.0.tgz'), 'swapped');
    const r = await runSteps([checksumsStep], ctx);
    expect(r.error).toMatchObject({ code: 'ARTIFACT_CHANGED', message: expect.stringContaining('vmaf-mcp-1.0.0.tgz') });
    expect(await readdir(ctx.releaseDir)).not.toContain('SHA256SUMS');
  });

  it('refuses a stray file and a symlink out of the release folder', async () => {
    const dir = await tempDir();
    const ctx = await releaseContext(dir);
    await runSteps([files(sample)], ctx);
    await writeFile(path.join(ctx.releaseDir, 'notes.txt'), 'who made me?');
    expect((await runSteps([checksumsStep], ctx)).error).toMatchObject({ code: 'RELEASE_STRAY_FILE', message: expect.stringContaining('notes.txt') });

    const ctx2 = await releaseContext(await tempDir());
    await runSteps([files(sample)], ctx2);
    await writeFile(path.join(dir, 'secret'), 's');
    await symlink(path.join(dir, 'secret'), path.join(ctx2.releaseDir, 'escape'));
    expect((await runSteps([checksumsStep], ctx2)).error).toMatchObject({ code: 'UNSAFE_PATH' });
  });

  it('refuses an artifact path that escapes the release folder in the manifest', async () => {
    const ctx = await releaseContext(await tempDir());
    await runSteps([files(sample)], ctx);
    (ctx.manifest.artifacts[0] as { path: string }).path = '../outside.tgz';
    expect((await runSteps([checksumsStep], ctx)).error).toMatchObject({ code: 'UNSAFE_PATH' });
  });

  it('leaves the previous SHA256SUMS whole when a file cannot be read part-way', async () => {
    const ctx = await releaseContext(await tempDir());
    await runSteps([files(sample), checksumsStep], ctx);
    const before = await readFile(path.join(ctx.releaseDir, 'SHA256SUMS'));
    // The next run: a new file, and a read error on the second file hashed.
    await runSteps([files({ ...sample, 'extra.bin': 'more' })], ctx);
    let opened = 0;
    ctx.deps.openRead = (file: string) => {
      opened += 1;
      if (opened === 2) {
        return new Readable({
          read() {
            this.destroy(Object.assign(new Error(`EACCES: permission denied, open '${file}'`), { code: 'EACCES' }));
          },
        });
      }
      return Readable.from([execFileSync('cat', [file])]);
    };
    const r = await runSteps([checksumsStep], ctx);
    expect(r.error).toMatchObject({ code: 'ARTIFACT_UNREADABLE', hint: expect.stringContaining('chmod') });
    expect((await readFile(path.join(ctx.releaseDir, 'SHA256SUMS'))).equals(before)).toBe(true);
    expect((await readdir(ctx.releaseDir)).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});
