/**
 * A manifest edited by hand. Read from disk, a wrong shape, a duplicate artifact, an unsafe path
 * hidden behind a duplicate JSON key or bytes that are not UTF-8 are each refused with a coded
 * error. Digests edited away from the files stop checksums and sign before they write anything
 * for them; and digests edited to match a swapped file do not get it past the verify step, which
 * reads the release as a consumer does, never the manifest. (manifest.test.ts covers the
 * schema-version and field errors of parseManifest; the property test is manifest/src/fuzz.test.ts.)
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newManifest, readManifest, writeManifest, type Manifest } from '@mcp-release/manifest';
import { checksumsStep } from '../../packages/steps/src/checksums.js';
import type { ReleaseContext } from '../../packages/steps/src/options.js';
import { provenanceStep } from '../../packages/steps/src/provenance/provenance-step.js';
import { signStep } from '../../packages/steps/src/sign.js';
import { verifyReleaseStep } from '../../packages/steps/src/verify-step.js';
import { releaseContext, runSteps, TEST_PLAN } from '../helpers/context.js';
import { caught, tempDir } from '../helpers/tmp.js';
import { buildFiles, startReleaseLab, type ReleaseLab } from './release.js';

function sample(): Manifest {
  const m = newManifest(structuredClone(TEST_PLAN));
  m.artifacts.push({ path: 'a.so', kind: 'native-library', platform: 'linux-x64', size: 4, sha256: '3'.repeat(64), sha512: '4'.repeat(128), producedBy: 'build-native' });
  m.artifacts.push({ path: 'b.tgz', kind: 'npm-tarball', platform: 'any', size: 3, sha256: '1'.repeat(64), sha512: '2'.repeat(128), producedBy: 'build-npm' });
  return m;
}

/** Writes `text` as the manifest file and reads it back. */
async function readEdited(text: string | Buffer): Promise<Error & { code?: string; details?: string[]; hint?: string }> {
  const file = path.join(await tempDir(), 'manifest.json');
  await writeFile(file, text);
  return caught(() => readManifest(file));
}

/** The manifest as compact JSON text, the form the edits below are made to. */
const valid = JSON.stringify(sample());

describe('a manifest file edited by hand', () => {
  it.each<[string, string, string | Buffer, RegExp]>([
    ['only a schema version', 'MANIFEST_INVALID', '{"schemaVersion":1}', /plan is required/],
    ['artifacts as an object', 'MANIFEST_INVALID', valid.replace(/"artifacts":\[.*?\],"steps"/, '"artifacts":{"a.so":{}},"steps"'), /artifacts must be array/],
    ['a negative size', 'MANIFEST_INVALID', valid.replace('"size":4', '"size":-4'), /artifacts\[0\]\.size/],
    ['a size as text', 'MANIFEST_INVALID', valid.replace('"size":4', '"size":"4"'), /artifacts\[0\]\.size/],
    ['a fractional size', 'MANIFEST_INVALID', valid.replace('"size":4', '"size":4.5'), /artifacts\[0\]\.size/],
    ['an upper-case digest', 'MANIFEST_INVALID', valid.replace('3'.repeat(64), 'A'.repeat(64)), /artifacts\[0\]\.sha256/],
    ['a short sha512', 'MANIFEST_INVALID', valid.replace('4'.repeat(128), '4'.repeat(127)), /artifacts\[0\]\.sha512/],
    ['an unknown kind', 'MANIFEST_INVALID', valid.replace('"native-library"', '"crypto-miner"'), /artifacts\[0\]\.kind must be one of/],
    ['an unknown top-level key', 'MANIFEST_INVALID', valid.replace('{"schemaVersion"', '{"postinstall":"curl x | sh","schemaVersion"'), /postinstall is not allowed/],
    ['a newer schema version', 'MANIFEST_TOO_NEW', valid.replace('"schemaVersion":1', '"schemaVersion":2'), /schemaVersion 2/],
    ['a schema version as text', 'MANIFEST_SCHEMA_VERSION', valid.replace('"schemaVersion":1', '"schemaVersion":"1"'), /schemaVersion/],
    ['the same path twice', 'MANIFEST_DUPLICATE_ARTIFACT', valid.replace('"path":"b.tgz"', '"path":"a.so"'), /"a\.so" is listed twice/],
    ['an escaping path behind a duplicate key (the last one counts)', 'UNSAFE_PATH', valid.replace('"path":"b.tgz"', '"path":"b.tgz","path":"../../b.tgz"'), /escapes the release folder/],
    ['an absolute path', 'UNSAFE_PATH', valid.replace('"path":"b.tgz"', '"path":"/etc/passwd"'), /is absolute/],
    ['a NUL byte in a path', 'UNSAFE_PATH', valid.replace('"path":"b.tgz"', '"path":"b.tgz\\u0000.sh"'), /NUL/],
    ['a lone surrogate in a path', 'UNSAFE_PATH', valid.replace('"path":"b.tgz"', '"path":"b\\ud800.tgz"'), /not valid UTF-8/],
    ['bytes that are not UTF-8 in a path', 'MANIFEST_INVALID', Buffer.concat([Buffer.from(valid.slice(0, valid.indexOf('b.tgz'))), Buffer.from([0x62, 0xff, 0xfe]), Buffer.from(valid.slice(valid.indexOf('b.tgz') + 1))]), /is not UTF-8 text/],
    ['trailing text after the JSON', 'MANIFEST_INVALID', `${valid}\n{"more":1}`, /is not valid JSON/],
    ['JSON that is a list', 'MANIFEST_INVALID', `[${valid}]`, /is not a JSON object/],
  ])('%s: %s', async (_what, code, text, message) => {
    const err = await readEdited(text);
    expect(err.code).toBe(code);
    expect([err.message, ...(err.details ?? [])].join('\n')).toMatch(message);
    expect(err.hint).toBeTruthy();
  });
});

describe('digests edited by hand, against the files on disk (lab Sigstore)', () => {
  let work: string;
  let lab: ReleaseLab;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'mcp-release-hostile-manifest-'));
    lab = await startReleaseLab(work);
  });
  afterAll(async () => {
    await lab?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const FILES = [
    { name: 'libvmaf.so', content: 'the library' },
    { name: 'models.tar.gz', content: 'the models' },
  ];

  /** A built release whose manifest was written to disk, edited as text by `edit`, and read back. */
  async function edited(edit: (m: Manifest) => void): Promise<ReleaseContext> {
    const dir = await tempDir();
    const built = await releaseContext(dir, { policy: lab.policy }, { deps: { env: lab.env } });
    expect((await runSteps([buildFiles(FILES)], built)).error).toBeUndefined();
    await writeManifest(built.manifestPath, built.manifest);
    const value = JSON.parse(await readFile(built.manifestPath, 'utf8')) as Manifest;
    edit(value);
    await writeFile(built.manifestPath, JSON.stringify(value, null, 2));
    return releaseContext(dir, { policy: lab.policy }, { deps: { env: lab.env }, manifest: await readManifest(built.manifestPath) });
  }

  const lib = (m: Manifest) => m.artifacts.find((a) => a.path === 'libvmaf.so') as Manifest['artifacts'][number];

  it.each<[string, (m: Manifest) => void]>([
    ['sha256', (m) => (lib(m).sha256 = createHash('sha256').update('something else').digest('hex'))],
    ['sha512', (m) => (lib(m).sha512 = createHash('sha512').update('something else').digest('hex'))],
    ['size', (m) => (lib(m).size += 1)],
  ])('an edited %s stops checksums, and no SHA256SUMS is written', async (_field, edit) => {
    const ctx = await edited(edit);
    const r = await runSteps([checksumsStep], ctx);
    expect(r.error).toMatchObject({ code: 'ARTIFACT_CHANGED', message: expect.stringContaining('libvmaf.so changed after build-npm recorded it'), hint: expect.stringContaining('re-run build-npm') });
    expect((await readdir(ctx.releaseDir)).sort()).toEqual(['libvmaf.so', 'models.tar.gz']);
  });

  it('an edited sha256 stops sign: no bundle of that file, and none recorded', async () => {
    const ctx = await edited((m) => (lib(m).sha256 = '0'.repeat(64)));
    const r = await runSteps([signStep], ctx);
    expect(r.error).toMatchObject({ code: 'ARTIFACT_CHANGED', message: expect.stringContaining('libvmaf.so changed after build-npm recorded it; it was not signed') });
    expect(await readdir(ctx.releaseDir)).not.toContain('libvmaf.so.sigstore.json');
    expect(ctx.manifest.artifacts.filter((a) => a.kind === 'sigstore-bundle')).toEqual([]);
    expect(ctx.manifest.steps.sign?.state).toBe('failed');
  });

  it('digests edited to match a swapped file do not get it past verify, which never reads the manifest', async () => {
    const dir = await tempDir();
    const ctx = await releaseContext(dir, { policy: lab.policy }, { deps: { env: lab.env } });
    expect((await runSteps([buildFiles(FILES), checksumsStep, signStep, provenanceStep, verifyReleaseStep], ctx)).error).toBeUndefined();
    // the swap: other bytes, and a manifest that agrees with them
    const swapped = Buffer.from('a trojan library');
    await writeFile(path.join(ctx.releaseDir, 'libvmaf.so'), swapped);
    await writeManifest(ctx.manifestPath, ctx.manifest);
    const text = (await readFile(ctx.manifestPath, 'utf8'))
      .replace(lib(ctx.manifest).sha256, createHash('sha256').update(swapped).digest('hex'))
      .replace(lib(ctx.manifest).sha512, createHash('sha512').update(swapped).digest('hex'))
      .replace(`"size":${lib(ctx.manifest).size}`, `"size":${swapped.length}`);
    await writeFile(ctx.manifestPath, text);
    const reread = await releaseContext(dir, { policy: lab.policy }, { deps: { env: lab.env }, manifest: await readManifest(ctx.manifestPath) });
    expect(lib(reread.manifest).sha256).toBe(createHash('sha256').update(swapped).digest('hex'));
    const r = await runSteps([verifyReleaseStep], reread);
    expect(r.error).toMatchObject({ code: 'RELEASE_NOT_VERIFIED', details: expect.arrayContaining([expect.stringContaining('libvmaf.so')]), hint: expect.stringContaining('nothing was published') });
  });
});
