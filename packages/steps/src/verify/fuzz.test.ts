/**
 * Property tests of the Sigstore bundle reader and checker (checkBundle): a genuine bundle from
 * the lab with values replaced, keys deleted, characters changed or its text damaged either still
 * verifies as the same signature, or is refused with a coded VERIFY_ / CANNOT_VERIFY_ error. Never
 * a TypeError, a RangeError or a hang, and never "verified" for something else.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SerializedBundle } from '@sigstore/bundle';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileValue, mutatedJson, mutatedText, settledOrCoded } from '../../../../test/hostile/fuzz.js';
import { checkBundle, type BundleCheck, type BundleVerification } from './bundle.js';
import { LAB_SAN, startSigningLab, type SigningLab } from './testing.js';

const CODES = /^(VERIFY|CANNOT_VERIFY)_[A-Z_]+$/;

let lab: SigningLab;
let dir: string;
let sha256: string;
let message: SerializedBundle;
let dsse: SerializedBundle;
let genuine: { message: BundleVerification; dsse: BundleVerification };

beforeAll(async () => {
  lab = await startSigningLab();
  const signer = await lab.signer();
  dir = await mkdtemp(path.join(tmpdir(), 'verify-fuzz-'));
  const data = randomBytes(4096);
  const file = path.join(dir, 'libvmaf.so');
  await writeFile(file, data);
  sha256 = createHash('sha256').update(data).digest('hex');
  message = (await signer.signFile(file)).bundle;
  dsse = await signer.signStatement({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'libvmaf.so', digest: { sha256 } }], predicateType: 'https://slsa.dev/provenance/v1', predicate: {} });
  genuine = { message: await checkBundle(check(JSON.stringify(message))), dsse: await checkBundle(check(JSON.stringify(dsse))) };
});

afterAll(async () => {
  await lab?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function check(text: string): BundleCheck {
  return { where: 'fuzz.sigstore.json', text, artifact: { hashes: { sha256 } }, identity: { exact: LAB_SAN }, issuer: lab.oidc.issuer, trustedRoot: lab.sigstore.trustedRoot };
}

/** A bundle that still verifies speaks for the same signer, log entry and (for DSSE) the same statement. */
function sameAsGenuine(result: BundleVerification | undefined): void {
  if (!result) return;
  const original = result.kind === 'message' ? genuine.message : genuine.dsse;
  expect(result).toMatchObject({ verified: true, san: LAB_SAN, issuer: lab.oidc.issuer, logIndex: original.logIndex });
  if (result.kind === 'dsse') expect(result.statement).toEqual(original.statement);
}

describe('Sigstore bundle checker (property tests)', () => {
  it('the genuine bundles verify (the baseline the mutations start from)', () => {
    expect(genuine.message).toMatchObject({ verified: true, kind: 'message' });
    expect(genuine.dsse).toMatchObject({ verified: true, kind: 'dsse' });
  });

  it('message and DSSE bundles with values replaced, keys deleted, entries duplicated and characters changed', async () => {
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutatedJson(message, 3), mutatedJson(dsse, 3)), async (doc) => {
        const result = await settledOrCoded(() => checkBundle(check(JSON.stringify(doc) ?? '')), CODES);
        if (!result) refused += 1;
        sameAsGenuine(result);
      }),
      { numRuns: 200 },
    );
    expect(refused).toBeGreaterThan(0);
  });

  it('damaged bundle text and arbitrary JSON', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutatedText(JSON.stringify(message)), mutatedText(JSON.stringify(dsse, null, 2)), hostileValue.map((v) => JSON.stringify(v) ?? ''), fc.string({ maxLength: 40 })), async (text) => {
        sameAsGenuine(await settledOrCoded(() => checkBundle(check(text)), CODES));
      }),
      { numRuns: 300 },
    );
  });
});
