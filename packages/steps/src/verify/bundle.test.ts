import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { BUNDLE_V01_MEDIA_TYPE, bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { FulcioSigner, MessageSignatureBundleBuilder, RekorWitness } from '@sigstore/sign';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { githubIdentity, type ReleaseSigner } from '../sigstore/signing.js';
import { startSigningLab, LAB_SAN, type SigningLab } from './testing.js';
import { parseArtifact, verifyBundle, verifyDigestSignature, type VerifyBundleOptions } from './bundle.js';
import { verifyExitCode } from './codes.js';

let lab: SigningLab;
let signer: ReleaseSigner;
let dir: string;
let fileA: string;
let fileB: string;
let bundleA: SerializedBundle;
let bundleB: SerializedBundle;
let dsse: SerializedBundle;
let dataA: Buffer;

beforeAll(async () => {
  lab = await startSigningLab();
  signer = await lab.signer();
  // the folder outlives single tests: made here, removed in afterAll
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  dir = await mkdtemp(path.join(tmpdir(), 'verify-bundle-'));
  fileA = path.join(dir, 'libvmaf.so');
  fileB = path.join(dir, 'vmaf');
  dataA = randomBytes(1024 * 1024 + 3);
  await writeFile(fileA, dataA);
  await writeFile(fileB, randomBytes(4096));
  bundleA = (await signer.signFile(fileA)).bundle;
  bundleB = (await signer.signFile(fileB)).bundle;
  dsse = await signer.signStatement({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'libvmaf.so', digest: { sha256: createHash('sha256').update(dataA).digest('hex') } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {},
  });
});

afterAll(async () => {
  await lab?.stop();
  const { rm } = await import('node:fs/promises');
  if (dir) await rm(dir, { recursive: true, force: true });
});

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

async function bundleFile(bundle: unknown, name = 'x.sigstore.json'): Promise<string> {
  const file = path.join(await tempDir(), name);
  await writeFile(file, typeof bundle === 'string' ? bundle : JSON.stringify(bundle));
  return file;
}

function options(bundle: string, extra: Partial<VerifyBundleOptions> = {}): VerifyBundleOptions {
  return { bundle, artifact: { file: fileA }, identity: { exact: LAB_SAN }, issuer: lab.oidc.issuer, trustedRoot: lab.sigstore.trustedRoot, ...extra };
}

const body = (b: SerializedBundle): Record<string, unknown> => JSON.parse(Buffer.from(b.verificationMaterial.tlogEntries[0]?.canonicalizedBody as string, 'base64').toString()) as Record<string, unknown>;
const setBody = (b: SerializedBundle, value: unknown): void => {
  (b.verificationMaterial.tlogEntries[0] as { canonicalizedBody: string }).canonicalizedBody = Buffer.from(JSON.stringify(value)).toString('base64');
};

describe('verifyBundle: message signatures', () => {
  it('verifies a v0.3 bundle against the file, and says who signed, where and when', async () => {
    const result = await verifyBundle(options(await bundleFile(bundleA)));
    expect(result).toMatchObject({ verified: true, kind: 'message', san: LAB_SAN, issuer: lab.oidc.issuer, mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' });
    expect(result.logIndex).toBe(Number(bundleA.verificationMaterial.tlogEntries[0]?.logIndex));
    expect(result.integratedTime).toBe(new Date(Number(bundleA.verificationMaterial.tlogEntries[0]?.integratedTime) * 1000).toISOString());
    expect(result.run).toBe(`https://github.com/mcp-release/vmaf-mcp/actions/runs/1/attempts/1`);
    expect(result.commit).toBe('0'.repeat(40));
    expect(verifyExitCode(result)).toBe(0);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });

  it('takes sha256:<hex> instead of the file, and refuses a digest that is not the signed one', async () => {
    const hex = createHash('sha256').update(dataA).digest('hex');
    expect(parseArtifact(`sha256:${hex}`)).toEqual({ sha256: hex });
    expect(parseArtifact(fileA)).toEqual({ file: fileA });
    const file = await bundleFile(bundleA);
    await expect(verifyBundle(options(file, { artifact: parseArtifact(`sha256:${hex.toUpperCase()}`) }))).resolves.toMatchObject({ verified: true });
    const err = await caught(async () => verifyBundle(options(file, { artifact: { sha256: `sha256:${'0'.repeat(64)}` } })));
    expect(err).toMatchObject({ code: 'VERIFY_DIGEST_MISMATCH' });
    expect(err.message).toContain(`sha256:${'0'.repeat(64)}`);
    expect(await caught(async () => verifyBundle(options(file, { artifact: { sha256: 'sha256:abc' } })))).toMatchObject({ code: 'CANNOT_VERIFY_OPTIONS' });
  });

  it('refuses a file with one byte flipped', async () => {
    const flipped = Buffer.from(dataA);
    flipped[1000] = (flipped[1000] as number) ^ 1;
    const file = path.join(await tempDir(), 'libvmaf.so');
    await writeFile(file, flipped);
    const err = await caught(async () => verifyBundle(options(await bundleFile(bundleA), { artifact: { file } })));
    expect(err).toMatchObject({ code: 'VERIFY_DIGEST_MISMATCH' });
    expect(err.message).toMatch(/signs sha256:[0-9a-f]{64}, but the artifact .*libvmaf\.so has sha256:/);
    expect(verifyExitCode(err)).toBe(1);
  });

  it("refuses another file's bundle", async () => {
    const err = await caught(async () => verifyBundle(options(await bundleFile(bundleB), { artifact: { file: fileA } })));
    expect(err).toMatchObject({ code: 'VERIFY_DIGEST_MISMATCH' });
  });

  it('refuses a wrong identity, naming the expected and the found SAN', async () => {
    const err = await caught(async () => verifyBundle(options(await bundleFile(bundleA), { identity: { exact: 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/dev' } })));
    expect(err).toMatchObject({ code: 'VERIFY_IDENTITY_MISMATCH' });
    expect(err.message).toContain(`signed by ${LAB_SAN}, expected https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/dev`);
  });

  it('anchors a regular expression identity: a substring match is not a match', async () => {
    const file = await bundleFile(bundleA);
    const err = await caught(async () => verifyBundle(options(file, { identity: { regexp: 'mcp-release/vmaf-mcp/\\.github/workflows/release\\.yml' } })));
    expect(err).toMatchObject({ code: 'VERIFY_IDENTITY_MISMATCH' });
    expect(err.message).toContain('expected a match of ^(?:mcp-release/vmaf-mcp/\\.github/workflows/release\\.yml)$');
    // alternation cannot escape the anchors either
    expect(await caught(async () => verifyBundle(options(file, { identity: { regexp: 'nothing|mcp-release' } })))).toMatchObject({ code: 'VERIFY_IDENTITY_MISMATCH' });
    await expect(verifyBundle(options(file, { identity: { regexp: 'https://github\\.com/mcp-release/vmaf-mcp/\\.github/workflows/release\\.yml@refs/heads/.+' } }))).resolves.toMatchObject({ verified: true });
    expect(await caught(async () => verifyBundle(options(file, { identity: { regexp: '(' } })))).toMatchObject({ code: 'CANNOT_VERIFY_OPTIONS' });
  });

  it('refuses a wrong issuer', async () => {
    const err = await caught(async () => verifyBundle(options(await bundleFile(bundleA), { issuer: 'https://token.actions.githubusercontent.com' })));
    expect(err).toMatchObject({ code: 'VERIFY_ISSUER_MISMATCH' });
    expect(err.message).toContain(`issuer ${lab.oidc.issuer}, expected https://token.actions.githubusercontent.com`);
  });

  it('refuses a certificate that has expired by now when the bundle is stripped of its log entry and timestamp', async () => {
    const stripped = clone(bundleA);
    stripped.verificationMaterial.tlogEntries = [];
    stripped.verificationMaterial.timestampVerificationData = { rfc3161Timestamps: [] };
    const file = await bundleFile(stripped);
    // still within the certificate's ten minutes: no verified time at all
    expect(await caught(async () => verifyBundle(options(file)))).toMatchObject({ code: 'VERIFY_TIMESTAMP_MISSING' });
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 24 * 3600 * 1000);
      const err = await caught(async () => verifyBundle(options(file)));
      expect(err).toMatchObject({ code: 'VERIFY_CERTIFICATE_EXPIRED' });
      expect(err.message).toMatch(/expired at .*no transparency-log entry or signed timestamp/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a bundle without its log entry even when it has a timestamp', async () => {
    const stripped = clone(bundleA);
    stripped.verificationMaterial.tlogEntries = [];
    expect(await caught(async () => verifyBundle(options(await bundleFile(stripped))))).toMatchObject({ code: 'VERIFY_TLOG_MISSING' });
  });

  it('refuses an edited Rekor entry body', async () => {
    const edited = clone(bundleA);
    const b = body(edited) as { spec: { data: { hash: { value: string } } } };
    b.spec.data.hash.value = createHash('sha256').update('something else').digest('hex');
    setBody(edited, b);
    const err = await caught(async () => verifyBundle(options(await bundleFile(edited))));
    expect(err).toMatchObject({ code: 'VERIFY_TLOG_BODY_MISMATCH' });
    expect(err.message).toMatch(/the Rekor entry \d+ logs digest sha256:[0-9a-f]+, but the bundle signs/);
  });

  it('refuses an edited inclusion-proof hash, checkpoint and signed entry timestamp', async () => {
    const proof = clone(bundleA);
    const hashes = proof.verificationMaterial.tlogEntries[0]?.inclusionProof?.hashes as string[];
    if (hashes.length === 0) hashes.push(Buffer.alloc(32, 7).toString('base64'));
    else hashes[0] = Buffer.from(Buffer.from(hashes[0] as string, 'base64').map((x, i) => (i === 0 ? x ^ 1 : x))).toString('base64');
    // the signed entry timestamp would be checked first: leave only the proof to judge
    delete (proof.verificationMaterial.tlogEntries[0] as { inclusionPromise?: unknown }).inclusionPromise;
    const err = await caught(async () => verifyBundle(options(await bundleFile(proof))));
    expect(err).toMatchObject({ code: 'VERIFY_TLOG_INCLUSION_INVALID' });
    expect(err.message).toMatch(/inclusion proof does not lead to the logged tree root/);

    const checkpoint = clone(bundleA);
    const cp = checkpoint.verificationMaterial.tlogEntries[0]?.inclusionProof?.checkpoint as { envelope: string };
    cp.envelope = cp.envelope.replace(/\n(\d+)\n/, (_m, n: string) => `\n${Number(n) + 1}\n`);
    const errCp = await caught(async () => verifyBundle(options(await bundleFile(checkpoint))));
    expect(errCp).toMatchObject({ code: 'VERIFY_TLOG_INCLUSION_INVALID' });
    expect(errCp.message).toMatch(/checkpoint/);

    const promise = clone(bundleA);
    const entry = promise.verificationMaterial.tlogEntries[0] as { integratedTime: string };
    entry.integratedTime = String(Number(entry.integratedTime) + 1);
    const errSet = await caught(async () => verifyBundle(options(await bundleFile(promise))));
    expect(errSet).toMatchObject({ code: 'VERIFY_TLOG_INCLUSION_INVALID' });
    expect(errSet.message).toMatch(/signed entry timestamp/);
  });

  it('refuses a certificate that was not valid at the integrated time', async () => {
    const late = clone(bundleA);
    const entry = late.verificationMaterial.tlogEntries[0] as { integratedTime: string };
    entry.integratedTime = String(Number(entry.integratedTime) + 24 * 3600);
    const err = await caught(async () => verifyBundle(options(await bundleFile(late))));
    expect(err).toMatchObject({ code: 'VERIFY_CERTIFICATE_UNTRUSTED' });
    expect(err.message).toMatch(/was not valid at the signing time the bundle proves/);
  });

  it('refuses a certificate that does not chain to the trusted root', async () => {
    const other = await startSigningLab();
    try {
      const noTimestamp = clone(bundleA);
      noTimestamp.verificationMaterial.timestampVerificationData = { rfc3161Timestamps: [] };
      const err = await caught(async () => verifyBundle(options(await bundleFile(noTimestamp), { trustedRoot: other.sigstore.trustedRoot })));
      expect(err).toMatchObject({ code: 'VERIFY_CERTIFICATE_UNTRUSTED' });
      expect(err.message).toMatch(/does not chain to a Fulcio certificate authority/);
      // with its timestamp, the timestamp is the first thing the other root does not vouch for
      expect(await caught(async () => verifyBundle(options(await bundleFile(bundleA), { trustedRoot: other.sigstore.trustedRoot })))).toMatchObject({ code: 'VERIFY_TIMESTAMP_INVALID' });
    } finally {
      await other.stop();
    }
  });

  it('refuses malformed bundles and unknown media types, each with its own code', async () => {
    expect(await caught(async () => verifyBundle(options(await bundleFile('{"mediaType": ')))))
      .toMatchObject({ code: 'VERIFY_BUNDLE_MALFORMED', message: expect.stringContaining('is not JSON') });
    const noContent = clone(bundleA) as Partial<SerializedBundle>;
    delete noContent.messageSignature;
    const err = await caught(async () => verifyBundle(options(await bundleFile(noContent))));
    expect(err).toMatchObject({ code: 'VERIFY_BUNDLE_MALFORMED' });
    expect(err.message).toContain('content');
    expect(await caught(async () => verifyBundle(options(await bundleFile({ hello: 'world' }))))).toMatchObject({ code: 'VERIFY_BUNDLE_MALFORMED', message: expect.stringContaining('no mediaType') });
    const future = { ...clone(bundleA), mediaType: 'application/vnd.dev.sigstore.bundle.v0.9+json' };
    const errType = await caught(async () => verifyBundle(options(await bundleFile(future))));
    expect(errType).toMatchObject({ code: 'VERIFY_BUNDLE_MEDIA_TYPE' });
    expect(errType.message).toContain('application/vnd.dev.sigstore.bundle.v0.9+json');
    expect(await caught(async () => verifyBundle(options(path.join(dir, 'missing.sigstore.json'))))).toMatchObject({ code: 'CANNOT_VERIFY_INPUT' });
    expect(verifyExitCode(await caught(async () => verifyBundle(options(path.join(dir, 'missing.sigstore.json')))))).toBe(3);
  });

  it('refuses a bundle signed with a bare public key: there is no identity to check', async () => {
    const keyed = clone(bundleA) as SerializedBundle & { verificationMaterial: { certificate?: unknown; publicKey?: unknown } };
    delete keyed.verificationMaterial.certificate;
    keyed.verificationMaterial.publicKey = { hint: 'some-key' };
    expect(await caught(async () => verifyBundle(options(await bundleFile(keyed))))).toMatchObject({ code: 'VERIFY_BUNDLE_NO_CERTIFICATE' });
  });

  it('checks the ECDSA signature over the streamed digest', async () => {
    const { generateKeyPairSync, sign } = await import('node:crypto');
    for (const namedCurve of ['P-256', 'P-384']) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
      const digest = createHash('sha256').update('data').digest();
      const sig = sign('sha256', Buffer.from('data'), privateKey);
      expect(verifyDigestSignature(publicKey, sig, digest)).toBe(true);
      expect(verifyDigestSignature(publicKey, sig, createHash('sha256').update('datA').digest())).toBe(false);
      expect(verifyDigestSignature(publicKey, Buffer.from('not der'), digest)).toBe(false);
    }
    const ed = generateKeyPairSync('ed25519');
    expect(() => verifyDigestSignature(ed.publicKey, Buffer.alloc(64), Buffer.alloc(32))).toThrow(expect.objectContaining({ code: 'VERIFY_KEY_UNSUPPORTED' }));
  });

  it('streams a large file through the digest (64 MB)', async () => {
    const big = path.join(await tempDir(), 'models.tar.gz');
    const out = createWriteStream(big);
    const chunk = randomBytes(1024 * 1024);
    for (let i = 0; i < 64; i += 1) {
      chunk[0] = i;
      if (!out.write(Buffer.from(chunk))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    const { bundle, size } = await signer.signFile(big);
    expect(size).toBe(64 * 1024 * 1024);
    const result = await verifyBundle(options(await bundleFile(bundle), { artifact: { file: big } }));
    expect(result).toMatchObject({ verified: true, kind: 'message' });
  });
});

describe('verifyBundle: DSSE statements', () => {
  it('verifies a statement whose subjects include the file', async () => {
    const result = await verifyBundle(options(await bundleFile(dsse)));
    expect(result).toMatchObject({ verified: true, kind: 'dsse', san: LAB_SAN });
    expect(result.statement?.subject[0]?.name).toBe('libvmaf.so');
    const hex = createHash('sha256').update(dataA).digest('hex');
    await expect(verifyBundle(options(await bundleFile(dsse), { artifact: { sha256: hex } }))).resolves.toMatchObject({ kind: 'dsse' });
  });

  it('refuses a file that is not a subject', async () => {
    const err = await caught(async () => verifyBundle(options(await bundleFile(dsse), { artifact: { file: fileB } })));
    expect(err).toMatchObject({ code: 'VERIFY_SUBJECT_NOT_IN_STATEMENT' });
    expect(err.message).toContain('(subjects: libvmaf.so)');
  });

  it('refuses an envelope whose signature does not cover it', async () => {
    const edited = clone(dsse);
    (edited.dsseEnvelope as { payloadType: string }).payloadType = 'application/vnd.in-toto+jsonx';
    const err = await caught(async () => verifyBundle(options(await bundleFile(edited))));
    expect(err).toMatchObject({ code: 'VERIFY_SIGNATURE_INVALID' });
  });

  it('refuses an edited statement: the log entry no longer describes it', async () => {
    const edited = clone(dsse);
    const statement = JSON.parse(Buffer.from(edited.dsseEnvelope?.payload as string, 'base64').toString()) as { subject: Array<{ name: string }> };
    (statement.subject[0] as { name: string }).name = 'other';
    (edited.dsseEnvelope as { payload: string }).payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    const err = await caught(async () => verifyBundle(options(await bundleFile(edited))));
    expect(err).toMatchObject({ code: 'VERIFY_TLOG_BODY_MISMATCH' });
    expect(err.message).toContain('payload hash');
  });
});

describe('verifyBundle: older bundle versions', () => {
  it('verifies a v0.2 bundle with a certificate chain from MessageSignatureBundleBuilder, and a v0.1 bundle with only a signed entry timestamp', async () => {
    const env = { ACTIONS_ID_TOKEN_REQUEST_URL: lab.oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: lab.oidc.requestToken };
    const { generateKeyPairSync, sign } = await import('node:crypto');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyHolder = { sign: async (data: Buffer) => ({ signature: sign('sha256', data, privateKey), key: { $case: 'publicKey' as const, publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString() } }) };
    const builder = new MessageSignatureBundleBuilder({
      signer: new FulcioSigner({ fulcioBaseURL: lab.sigstore.urls.fulcio, identityProvider: githubIdentity(env), keyHolder }),
      witnesses: [new RekorWitness({ rekorBaseURL: lab.sigstore.urls.rekor })],
    });
    const data = await readFile(fileB);
    const v02 = bundleToJSON(await builder.create({ data }));
    expect(v02.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.2');
    expect(v02.verificationMaterial.x509CertificateChain?.certificates.length).toBeGreaterThan(0);
    const result = await verifyBundle(options(await bundleFile(v02), { artifact: { file: fileB } }));
    expect(result).toMatchObject({ verified: true, kind: 'message', san: LAB_SAN, mediaType: v02.mediaType });
    expect(await caught(async () => verifyBundle(options(await bundleFile(v02), { artifact: { file: fileA } })))).toMatchObject({ code: 'VERIFY_DIGEST_MISMATCH' });

    const v01 = clone(v02);
    v01.mediaType = BUNDLE_V01_MEDIA_TYPE;
    delete (v01.verificationMaterial.tlogEntries[0] as { inclusionProof?: unknown }).inclusionProof;
    await expect(verifyBundle(options(await bundleFile(v01), { artifact: { file: fileB } }))).resolves.toMatchObject({ verified: true, mediaType: BUNDLE_V01_MEDIA_TYPE });
    // v0.1 needs the signed entry timestamp
    delete (v01.verificationMaterial.tlogEntries[0] as { inclusionPromise?: unknown }).inclusionPromise;
    expect(await caught(async () => verifyBundle(options(await bundleFile(v01), { artifact: { file: fileB } })))).toMatchObject({ code: 'VERIFY_BUNDLE_MALFORMED', message: expect.stringContaining('inclusionPromise') });
  });
});
