/**
 * Malformed and oversized Sigstore bundles given to the verifier (packages/steps/src/verify/bundle.ts):
 * each is refused with a coded VERIFY_ error and bounded memory, however it is damaged or however
 * big; a bundle read from a pipe still verifies. (bundle.test.ts covers bad JSON, a missing
 * content, an unknown media type and edited log entries; verify/fuzz.test.ts the property.)
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SerializedBundle } from '@sigstore/bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyBundle, type VerifyBundleOptions } from '../../packages/steps/src/verify/bundle.js';
import { verifyExitCode } from '../../packages/steps/src/verify/codes.js';
import { LAB_SAN, startSigningLab, type SigningLab } from '../../packages/steps/src/verify/testing.js';
import { caught, tempDir } from '../helpers/tmp.js';

const execFileAsync = promisify(execFile);

let lab: SigningLab;
let sha256: string;
let genuine: SerializedBundle;

beforeAll(async () => {
  lab = await startSigningLab();
  const signer = await lab.signer();
  const dir = await tempDir();
  const data = randomBytes(1024);
  await writeFile(path.join(dir, 'libvmaf.so'), data);
  sha256 = createHash('sha256').update(data).digest('hex');
  genuine = (await signer.signFile(path.join(dir, 'libvmaf.so'))).bundle;
});
afterAll(() => lab?.stop());

function options(bundle: string): VerifyBundleOptions {
  return { bundle, artifact: { sha256: `sha256:${sha256}` }, identity: { exact: LAB_SAN }, issuer: lab.oidc.issuer, trustedRoot: lab.sigstore.trustedRoot };
}

async function bundleFile(content: string | Buffer): Promise<string> {
  const file = path.join(await tempDir(), 'x.sigstore.json');
  await writeFile(file, content);
  return file;
}

/** Verifies while sampling RSS; returns what it threw and the peak RSS growth. */
async function refusedWithin(bundle: string): Promise<{ err: Error & { code?: string }; peak: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    const err = await caught(() => verifyBundle(options(bundle)));
    return { err, peak: peak - before };
  } finally {
    clearInterval(timer);
  }
}

const clone = (): SerializedBundle & Record<string, unknown> => JSON.parse(JSON.stringify(genuine)) as SerializedBundle & Record<string, unknown>;

describe('oversized bundles', () => {
  it('a 1 GiB sparse file named like a bundle is refused by its size, without reading it', async () => {
    const file = path.join(await tempDir(), 'huge.sigstore.json');
    const handle = await open(file, 'w');
    await handle.truncate(1024 ** 3);
    await handle.close();
    const { err, peak } = await refusedWithin(file);
    expect(err).toMatchObject({ code: 'VERIFY_BUNDLE_MALFORMED', message: expect.stringContaining('1073741824 bytes: far too big'), hint: expect.stringContaining('not at the artifact') });
    expect(peak).toBeLessThan(64 * 1000 * 1000);
  });

  it('an endless stream (/dev/zero) is cut at the bound, not read into memory', async () => {
    const { err, peak } = await refusedWithin('/dev/zero');
    expect(err).toMatchObject({ code: 'VERIFY_BUNDLE_MALFORMED', message: expect.stringContaining('far too big') });
    expect(peak).toBeLessThan(150 * 1000 * 1000);
  });

  it('a bundle from a pipe (as with --bundle <(curl …)) is read and verifies', async () => {
    const fifo = path.join(await tempDir(), 'bundle.fifo');
    await execFileAsync('mkfifo', [fifo]);
    const writing = writeFile(fifo, JSON.stringify(genuine));
    const [result] = await Promise.all([verifyBundle(options(fifo)), writing]);
    expect(result).toMatchObject({ verified: true, san: LAB_SAN });
  });

  it('15 MB of log entries under the size bound is refused with a code, not a crash', async () => {
    const b = clone();
    const entry = b.verificationMaterial.tlogEntries[0];
    b.verificationMaterial.tlogEntries = Array.from({ length: 5000 }, () => entry) as typeof b.verificationMaterial.tlogEntries;
    const text = JSON.stringify(b);
    expect(text.length).toBeGreaterThan(10 * 1024 * 1024);
    const { err } = await refusedWithin(await bundleFile(text));
    expect(err.code).toMatch(/^VERIFY_[A-Z_]+$/);
    expect(verifyExitCode(err)).toBe(1);
  });
});

describe('malformed bundles', () => {
  const cases: Array<[string, string, () => unknown]> = [
    ['nesting 100 000 deep', 'VERIFY_BUNDLE_MALFORMED', () => `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
    ['verificationMaterial as text', 'VERIFY_BUNDLE_MALFORMED', () => ({ ...clone(), verificationMaterial: 'x' })],
    ['tlogEntries as an object', 'VERIFY_TLOG_MISSING', () => { const b = clone(); (b.verificationMaterial as Record<string, unknown>).tlogEntries = { a: 1 }; return b; }],
    ['a certificate that is not base64 DER', 'VERIFY_BUNDLE_MALFORMED', () => { const b = clone(); (b.verificationMaterial as { certificate: { rawBytes: string } }).certificate.rawBytes = '!!not base64!!'; return b; }],
    ['a certificate of bytes that are not DER (the log entry no longer names it)', 'VERIFY_TLOG_BODY_MISMATCH', () => { const b = clone(); (b.verificationMaterial as { certificate: { rawBytes: string } }).certificate.rawBytes = Buffer.alloc(600, 0x41).toString('base64'); return b; }],
    ['an integrated time that is not a number', 'VERIFY_BUNDLE_MALFORMED', () => { const b = clone(); (b.verificationMaterial.tlogEntries[0] as { integratedTime: string }).integratedTime = 'A1795269799'; return b; }],
    ['a log index that is negative', 'VERIFY_BUNDLE_MALFORMED', () => { const b = clone(); (b.verificationMaterial.tlogEntries[0] as { logIndex: string }).logIndex = '-1'; return b; }],
    ['a digest algorithm nobody knows', 'VERIFY_BUNDLE_MALFORMED', () => { const b = clone(); (b.messageSignature as { messageDigest: { algorithm: string } }).messageDigest.algorithm = 'MD5'; return b; }],
    ['a media type with a line break', 'VERIFY_BUNDLE_MEDIA_TYPE', () => ({ ...clone(), mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json\n::error::x' })],
    ['no content at all', 'VERIFY_BUNDLE_MALFORMED', () => { const b = clone(); delete b.messageSignature; return b; }],
    ['a body that is not base64 JSON', 'VERIFY_TLOG_BODY_MISMATCH', () => { const b = clone(); (b.verificationMaterial.tlogEntries[0] as { canonicalizedBody: string }).canonicalizedBody = Buffer.from('{"kind":').toString('base64'); return b; }],
  ];

  it.each(cases)('%s: %s', async (_what, code, make) => {
    const value = make();
    const { err } = await refusedWithin(await bundleFile(typeof value === 'string' ? value : JSON.stringify(value)));
    expect(err).toMatchObject({ code, hint: expect.any(String) });
    expect(verifyExitCode(err)).toBe(1);
  });

  it('the genuine bundle verifies (the baseline the damaged ones start from)', async () => {
    expect(await verifyBundle(options(await bundleFile(JSON.stringify(genuine))))).toMatchObject({ verified: true });
  });
});
