import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { caught, tempDir } from '../../../test/helpers/tmp.js';
import { fileChunks, hashFile, npmIntegrity } from './hash.js';
import { assertSafeRelativePath, resolveInside } from './paths.js';

describe('hashFile', () => {
  it('agrees with sha256sum and sha512sum on a multi-chunk file, in one pass', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'blob.bin');
    await writeFile(file, randomBytes(3 * 1024 * 1024 + 17));
    const seen: number[] = [];
    const d = await hashFile(file, { onProgress: (n) => seen.push(n) });
    expect(d.size).toBe(3 * 1024 * 1024 + 17);
    expect(d.sha256).toBe(execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]);
    expect(d.sha512).toBe(execFileSync('sha512sum', [file], { encoding: 'utf8' }).split(' ')[0]);
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toBe(d.size);
  });

  it('hashes an empty file', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'empty'), '');
    const d = await hashFile(path.join(dir, 'empty'));
    expect(d).toEqual({ size: 0, sha256: createHash('sha256').digest('hex'), sha512: createHash('sha512').digest('hex') });
  });

  it('turns read errors into coded errors with a fix', async () => {
    const dir = await tempDir();
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const err = await caught(() =>
      hashFile(path.join(dir, 'x'), {
        openRead: () =>
          new Readable({
            read() {
              this.destroy(denied);
            },
          }),
      }),
    );
    expect(err).toMatchObject({ code: 'ARTIFACT_UNREADABLE' });
    expect(err.hint).toContain('chmod a+r');
    expect(await caught(() => hashFile(path.join(dir, 'missing')))).toMatchObject({ code: 'ARTIFACT_MISSING' });
    await mkdir(path.join(dir, 'folder'));
    expect(await caught(() => hashFile(path.join(dir, 'folder')))).toMatchObject({ code: 'ARTIFACT_NOT_A_FILE' });
  });

  it('reads a file through one reused buffer: every byte in order, and no new buffer per chunk', async () => {
    const dir = await tempDir();
    const data = randomBytes(10 * 1000 + 7);
    await writeFile(path.join(dir, 'blob.bin'), data);
    const copies: Buffer[] = [];
    const backing = new Set<ArrayBufferLike>();
    for await (const chunk of fileChunks(path.join(dir, 'blob.bin'), 1000)) {
      copies.push(Buffer.from(chunk));
      backing.add(chunk.buffer);
    }
    expect(copies.map((c) => c.length)).toEqual([...Array(10).fill(1000), 7]);
    expect(Buffer.concat(copies).equals(data)).toBe(true);
    expect(backing.size).toBe(1);
    await writeFile(path.join(dir, 'empty'), '');
    for await (const chunk of fileChunks(path.join(dir, 'empty'))) throw new Error(`an empty file gave a chunk of ${chunk.length} bytes`);
  });

  it('gives the registry form of the integrity', () => {
    const hex = createHash('sha512').update('abc').digest('hex');
    expect(npmIntegrity(hex)).toBe(`sha512-${createHash('sha512').update('abc').digest('base64')}`);
  });
});

describe('release paths', () => {
  it.each(['', '../x', 'a/../b', '/abs', 'C:\\x', 'a\\b', 'a\0b', 'a\nb', './a', 'a//b', 'bad\uD800'])('refuses %j', (name) => {
    expect(() => assertSafeRelativePath(name)).toThrow(expect.objectContaining({ code: 'UNSAFE_PATH' }));
  });

  it.each(['vmaf-mcp-1.0.0.tgz', 'native/libvmaf.so.3', 'SHA256SUMS'])('accepts %j', (name) => {
    expect(() => assertSafeRelativePath(name)).not.toThrow();
  });

  it('follows symlinks on disk and refuses one that leaves the folder', async () => {
    const dir = await tempDir();
    const root = path.join(dir, 'release');
    await mkdir(root);
    await writeFile(path.join(dir, 'secret'), 'outside');
    await writeFile(path.join(root, 'real.txt'), 'inside');
    await symlink(path.join(dir, 'secret'), path.join(root, 'leak'));
    await symlink('real.txt', path.join(root, 'alias'));
    await symlink(path.join(dir, 'gone'), path.join(root, 'dangling'));
    expect(await caught(() => resolveInside(root, 'leak'))).toMatchObject({ code: 'UNSAFE_PATH', message: expect.stringContaining('outside the release folder') });
    expect(await resolveInside(root, 'alias')).toBe(path.join(await import('node:fs/promises').then((f) => f.realpath(root)), 'real.txt'));
    expect(await caught(() => resolveInside(root, 'dangling'))).toMatchObject({ code: 'UNSAFE_PATH' });
    expect(await caught(() => resolveInside(root, 'nothing'))).toMatchObject({ code: 'ARTIFACT_MISSING' });
  });
});
