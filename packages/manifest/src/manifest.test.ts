import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { caught, tempDir } from '../../../test/helpers/tmp.js';
import { newManifest, parseManifest, readManifest, serializeManifest, writeManifest } from './manifest.js';
import type { Manifest } from './types.js';

const plan = {
  commit: 'a'.repeat(40),
  dirty: false,
  timestamp: '2026-01-02T03:04:05Z',
  epoch: 1767323045,
  tag: 'v1.2.3',
  packages: [{ name: 'vmaf-mcp', version: '1.2.3', path: 'packages/vmaf-mcp' }],
};

function sample(): Manifest {
  const m = newManifest(structuredClone(plan));
  m.artifacts.push({ path: 'b.tgz', kind: 'npm-tarball', platform: 'any', size: 3, sha256: '1'.repeat(64), sha512: '2'.repeat(128), producedBy: 'build-npm' });
  m.artifacts.push({ path: 'a.so', kind: 'native-library', platform: 'linux-x64', size: 4, sha256: '3'.repeat(64), sha512: '4'.repeat(128), producedBy: 'build-native' });
  m.steps['build-npm'] = { state: 'succeeded', fingerprint: '5'.repeat(64), outputs: ['b.tgz'] };
  return m;
}

describe('manifest', () => {
  it('round-trips and serialises deterministically (sorted keys, artifacts by path)', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'manifest.json');
    await writeManifest(file, sample());
    const back = await readManifest(file);
    expect(back.artifacts.map((a) => a.path)).toEqual(['a.so', 'b.tgz']);
    const reordered = { ...sample(), artifacts: [...sample().artifacts].reverse() };
    expect(serializeManifest(reordered)).toBe(await readFile(file, 'utf8'));
  });

  it('refuses a manifest written by a newer schema, naming the field and the fix', () => {
    const err = (() => {
      try {
        parseManifest({ ...sample(), schemaVersion: 7 }, 'manifest.json');
      } catch (e) {
        return e as Error & { code: string; hint: string };
      }
      throw new Error('accepted');
    })();
    expect(err.code).toBe('MANIFEST_TOO_NEW');
    expect(err.message).toContain('schemaVersion 7');
    expect(err.hint).toMatch(/upgrade mcp-release/);
  });

  it.each([
    [{ schemaVersion: '1' }, 'MANIFEST_SCHEMA_VERSION', 'schemaVersion'],
    [{ schemaVersion: 0 }, 'MANIFEST_SCHEMA_VERSION', 'schemaVersion'],
  ])('refuses a wrong schema version %j', (patch, code, field) => {
    expect(() => parseManifest({ ...sample(), ...patch })).toThrow(expect.objectContaining({ code, message: expect.stringContaining(field) }));
  });

  it('names the bad field of an invalid shape', () => {
    const m = sample() as unknown as { artifacts: Array<Record<string, unknown>>; plan: Record<string, unknown> };
    (m.artifacts[1] as Record<string, unknown>).sha256 = 'not-hex';
    expect(() => parseManifest(m)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID', message: expect.stringContaining('artifacts[1].sha256') }));
    const n = sample() as unknown as { plan: Record<string, unknown> };
    delete n.plan.commit;
    expect(() => parseManifest(n)).toThrow(expect.objectContaining({ message: expect.stringContaining('plan.commit is required') }));
    const k = sample() as unknown as { artifacts: Array<Record<string, unknown>> };
    (k.artifacts[0] as Record<string, unknown>).kind = 'bitcoin-miner';
    expect(() => parseManifest(k)).toThrow(expect.objectContaining({ message: expect.stringContaining('artifacts[0].kind must be one of') }));
  });

  it('refuses duplicate artifact paths and unsafe paths', () => {
    const dup = sample();
    dup.artifacts.push({ ...(dup.artifacts[0] as Manifest['artifacts'][number]) });
    expect(() => parseManifest(dup)).toThrow(expect.objectContaining({ code: 'MANIFEST_DUPLICATE_ARTIFACT' }));
    for (const bad of ['../escape.tgz', '/etc/passwd', 'a/../../b', 'x\ny']) {
      const m = sample();
      (m.artifacts[0] as Manifest['artifacts'][number]).path = bad;
      expect(() => parseManifest(m), bad).toThrow();
    }
  });

  it('reports a missing or non-JSON manifest with a fix', async () => {
    const dir = await tempDir();
    expect(await caught(() => readManifest(path.join(dir, 'nope.json')))).toMatchObject({ code: 'MANIFEST_MISSING' });
    await writeFile(path.join(dir, 'bad.json'), '{"schemaVersion": 1,');
    expect(await caught(() => readManifest(path.join(dir, 'bad.json')))).toMatchObject({ code: 'MANIFEST_INVALID' });
  });

  it('never leaves a partial manifest: an invalid one is refused before the old file is touched', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'manifest.json');
    await writeManifest(file, sample());
    const before = await readFile(file, 'utf8');
    const broken = sample();
    (broken.artifacts[0] as Manifest['artifacts'][number]).sha256 = 'zz';
    await caught(() => writeManifest(file, broken));
    expect(await readFile(file, 'utf8')).toBe(before);
    expect(await readdir(dir)).toEqual(['manifest.json']);
  });

  it('cleans up its temporary file when the final rename fails', async () => {
    const dir = await tempDir();
    const target = path.join(dir, 'manifest.json');
    await mkdir(path.join(target, 'occupied'), { recursive: true }); // a non-empty directory cannot be renamed over
    await caught(() => writeManifest(target, sample()));
    expect((await readdir(dir)).sort()).toEqual(['manifest.json']);
  });
});

describe('artifact order', () => {
  it('is the same in memory as after a write and a read, so derived fingerprints do not change', async () => {
    const { upsertArtifact } = await import('./manifest.js');
    const m = newManifest(structuredClone(plan));
    for (const p of ['z.tgz', 'a.so', 'm.tar.gz']) upsertArtifact(m, { path: p, kind: 'gate-report', platform: 'any', size: 1, sha256: '1'.repeat(64), sha512: '2'.repeat(128), producedBy: 'x' });
    const dir = await tempDir();
    await writeManifest(path.join(dir, 'm.json'), m);
    const back = await readManifest(path.join(dir, 'm.json'));
    expect(back.artifacts.map((a) => a.path)).toEqual(m.artifacts.map((a) => a.path));
    expect(m.artifacts.map((a) => a.path)).toEqual(['a.so', 'm.tar.gz', 'z.tgz']);
  });
});
