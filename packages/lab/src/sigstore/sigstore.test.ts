import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as signData } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SigstoreVerifier, type SigstoreBundle, type TrustedRoot as BrowserTrustedRoot } from '@freedomofpress/sigstore-browser';
import * as x509 from '@peculiar/x509';
import { bundleFromJSON, bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { RFC3161Timestamp, X509Certificate } from '@sigstore/core';
import { SigningConfig, TrustedRoot } from '@sigstore/protobuf-specs';
import { bundleBuilderFromSigningConfig, DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness, TSAWitness, type Witness } from '@sigstore/sign';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import * as sigstore from 'sigstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcService } from '../oidc.js';
import { startSigstore, toBundleV03, type SigstoreLab } from './index.js';

const run = promisify(execFile);

const oidc = new OidcService({ repository: 'acme/widget', repository_owner: 'acme', repository_visibility: 'public' });
let lab: SigstoreLab;
let stateDir: string;
let work: string;

const ISSUER = (): string => oidc.issuer;
const SAN = (): string => `https://github.com/${oidc.claims.job_workflow_ref}`;
const exact = (s: string): string => `^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;

const labOptions = (): Parameters<typeof startSigstore>[0] => ({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks`, stateDir });

beforeAll(async () => {
  await oidc.start();
  stateDir = await mkdtemp(path.join(tmpdir(), 'sigstore-lab-state-'));
  work = await mkdtemp(path.join(tmpdir(), 'sigstore-lab-work-'));
  lab = await startSigstore(labOptions());
});

afterAll(async () => {
  await lab?.stop();
  await oidc.stop();
  await rm(stateDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

interface SignOptions {
  token?: () => Promise<string>;
  rekor?: Partial<ConstructorParameters<typeof RekorWitness>[0]>;
  tsa?: Partial<ConstructorParameters<typeof TSAWitness>[0]>;
  fulcio?: { retry?: number; timeout?: number };
}

function witnesses(o: SignOptions = {}): Witness[] {
  return [new RekorWitness({ rekorBaseURL: lab.urls.rekor, retry: 0, ...o.rekor }), new TSAWitness({ tsaBaseURL: lab.urls.tsa, retry: 0, ...o.tsa })];
}

function signer(o: SignOptions = {}): FulcioSigner {
  return new FulcioSigner({
    fulcioBaseURL: lab.urls.fulcio,
    identityProvider: { getToken: o.token ?? (() => oidc.mint('sigstore')) },
    retry: 0,
    ...o.fulcio,
  });
}

async function signBlob(data: Buffer, o: SignOptions = {}): Promise<SerializedBundle> {
  const bundle = await new MessageSignatureBundleBuilder({ signer: signer(o), witnesses: witnesses(o) }).create({ data });
  return bundleToJSON(bundle);
}

async function signStatement(statement: Buffer): Promise<SerializedBundle> {
  const bundle = await new DSSEBundleBuilder({ signer: signer(), witnesses: witnesses() }).create({ data: statement, type: 'application/vnd.in-toto+json' });
  return bundleToJSON(bundle);
}

/** @sigstore/verify against the lab's trusted root, with an exact SAN and the issuer extension. */
function verifyJs(bundle: SerializedBundle, data: Buffer | undefined, policy = { san: SAN(), issuer: ISSUER() }, root = lab.trustedRoot): void {
  const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(root)));
  verifier.verify(toSignedEntity(bundleFromJSON(bundle), data), { subjectAlternativeName: exact(policy.san), extensions: { issuer: policy.issuer } });
}

/** The independent verifier (@freedomofpress/sigstore-browser). */
async function verifyBrowser(bundle: SerializedBundle, data: Buffer, policy = { san: SAN(), issuer: ISSUER() }, root = lab.trustedRoot): Promise<boolean> {
  const verifier = new SigstoreVerifier();
  await verifier.loadSigstoreRoot(root as unknown as BrowserTrustedRoot);
  return verifier.verifyArtifact(policy.san, policy.issuer, bundle as unknown as SigstoreBundle, new Uint8Array(data));
}

const leafOf = (bundle: SerializedBundle): Buffer => {
  const m = bundle.verificationMaterial as { x509CertificateChain?: { certificates: Array<{ rawBytes: string }> }; certificate?: { rawBytes: string } };
  return Buffer.from((m.certificate ?? m.x509CertificateChain?.certificates[0])?.rawBytes ?? '', 'base64');
};

const statementFor = (name: string, data: Buffer): Buffer =>
  Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name, digest: { sha256: createHash('sha256').update(data).digest('hex') } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: { buildDefinition: { buildType: 'https://mcp-release.lab/build/v1', externalParameters: {} }, runDetails: { builder: { id: SAN() } } },
    }),
  );

const pem = (der: Buffer, label = 'CERTIFICATE'): string => `-----BEGIN ${label}-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`;

const artifact = Buffer.from('vmaf-mcp-1.2.3.tgz contents\n'.repeat(50));
let blobBundle: SerializedBundle;
let dsseBundle: SerializedBundle;

describe('signing with @sigstore/sign against the lab', () => {
  it('makes a message-signature bundle that both verifiers accept, also as v0.3', async () => {
    blobBundle = await signBlob(artifact);
    expect(blobBundle.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.2');
    expect(blobBundle.verificationMaterial.tlogEntries).toHaveLength(1);
    expect(blobBundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
    verifyJs(blobBundle, artifact);
    await expect(verifyBrowser(blobBundle, artifact)).resolves.toBe(true);

    const v03 = toBundleV03(blobBundle);
    expect(v03.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(v03.verificationMaterial).not.toHaveProperty('x509CertificateChain');
    expect((v03.verificationMaterial as { certificate: { rawBytes: string } }).certificate.rawBytes).toBe(leafOf(blobBundle).toString('base64'));
    verifyJs(v03, artifact);
    await expect(verifyBrowser(v03, artifact)).resolves.toBe(true);
  });

  it('makes a DSSE bundle of an in-toto statement that both verifiers accept', async () => {
    dsseBundle = await signStatement(statementFor('vmaf-mcp-1.2.3.tgz', artifact));
    expect(dsseBundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(dsseBundle.verificationMaterial.tlogEntries[0]?.kindVersion).toEqual({ kind: 'dsse', version: '0.0.1' });
    verifyJs(dsseBundle, undefined);
    await expect(verifyBrowser(dsseBundle, artifact)).resolves.toBe(true);
  });

  it('issues a 10-minute leaf with the GitHub identity, the issuer and the workflow extensions', () => {
    const leaf = new x509.X509Certificate(leafOf(blobBundle));
    expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).toBe(10 * 60 * 1000);
    expect(leaf.subject).toBe('');
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.critical).toBe(true);
    expect(san?.names.toJSON()).toEqual([{ type: 'url', value: SAN() }]);
    const ext = (oid: string): string | undefined => {
      const e = leaf.extensions.find((x) => x.type === oid);
      if (!e) return undefined;
      const v = Buffer.from(e.value);
      // 1.1–1.6 hold the raw string; the others a DER UTF8String
      return Number(oid.split('.').pop()) <= 6 ? v.toString('utf8') : v.subarray(2).toString('utf8');
    };
    const c = oidc.claims;
    const expected: Record<number, string> = {
      1: ISSUER(),
      2: c.event_name,
      3: c.sha,
      5: c.repository,
      6: c.ref,
      8: ISSUER(),
      9: SAN(),
      10: c.sha,
      11: c.runner_environment,
      12: `https://github.com/${c.repository}`,
      13: c.sha,
      14: c.ref,
      16: `https://github.com/${c.repository_owner}`,
      18: `https://github.com/${c.workflow_ref}`,
      19: c.sha,
      20: c.event_name,
      21: `https://github.com/${c.repository}/actions/runs/${c.run_id}/attempts/${c.run_attempt}`,
      22: 'public',
      23: 'release',
    };
    for (const [n, value] of Object.entries(expected)) expect(ext(`1.3.6.1.4.1.57264.1.${n}`), `extension 1.${n}`).toBe(value);
    expect(leaf.extensions.find((x) => x.type === '1.3.6.1.4.1.11129.2.4.2')).toBeDefined(); // embedded SCT
    const other = new x509.X509Certificate(leafOf(dsseBundle));
    expect(other.serialNumber).not.toBe(leaf.serialNumber);
    expect(leaf.serialNumber.length).toBeGreaterThanOrEqual(32);
  });

  it('fills 1.4, 1.15 and 1.17 and the digests from the claims GitHub sends when the token has them', async () => {
    const claims = { workflow: 'Release', repository_id: '123456', repository_owner_id: '7890', job_workflow_sha: 'a'.repeat(40), workflow_sha: 'b'.repeat(40) };
    const bundle = await signBlob(Buffer.from('extra claims'), { token: () => oidc.mint('sigstore', { claims }) });
    const leaf = new x509.X509Certificate(leafOf(bundle));
    const value = (n: number): string => {
      const v = Buffer.from(leaf.extensions.find((x) => x.type === `1.3.6.1.4.1.57264.1.${n}`)?.value ?? new ArrayBuffer(0));
      return n <= 6 ? v.toString('utf8') : v.subarray(2).toString('utf8');
    };
    expect([value(4), value(10), value(15), value(17), value(19)]).toEqual(['Release', 'a'.repeat(40), '123456', '7890', 'b'.repeat(40)]);
  });

  it('builds from the lab signing config (bundleBuilderFromSigningConfig)', async () => {
    const builder = bundleBuilderFromSigningConfig({
      signingConfig: SigningConfig.fromJSON(lab.signingConfig),
      identityProvider: { getToken: () => oidc.mint('sigstore') },
      bundleType: 'messageSignature',
      fetchOptions: { retry: 0 },
    });
    const data = Buffer.from('signed from the signing config');
    const bundle = bundleToJSON(await builder.create({ data }));
    verifyJs(bundle, data);
  });
});

describe('rejections by both verifiers', () => {
  it('refuses a tampered artifact', async () => {
    const tampered = Buffer.concat([artifact, Buffer.from('!')]);
    expect(() => verifyJs(blobBundle, tampered)).toThrow(/signature|digest/i);
    await expect(verifyBrowser(blobBundle, tampered)).rejects.toThrow();
    // the DSSE statement names the original digest
    await expect(verifyBrowser(dsseBundle, tampered)).rejects.toThrow(/does not match any subject/);
  });

  it('refuses a wrong SAN', async () => {
    const policy = { san: 'https://github.com/evil/fork/.github/workflows/release.yml@refs/heads/main', issuer: ISSUER() };
    expect(() => verifyJs(blobBundle, artifact, policy)).toThrow(/certificate identity error/);
    await expect(verifyBrowser(blobBundle, artifact, policy)).rejects.toThrow(/subjectAltName/);
    // a SAN that only contains the expected one does not pass either (anchored)
    expect(() => verifyJs(blobBundle, artifact, { san: SAN().slice(0, -5), issuer: ISSUER() })).toThrow(/certificate identity error/);
  });

  it('refuses a wrong issuer', async () => {
    const policy = { san: SAN(), issuer: 'https://token.actions.githubusercontent.com' };
    expect(() => verifyJs(blobBundle, artifact, policy)).toThrow(/invalid certificate extension/);
    await expect(verifyBrowser(blobBundle, artifact, policy)).rejects.toThrow(/issuer/);
  });

  it('refuses a bundle against another lab’s trusted root', async () => {
    const other = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks` });
    try {
      expect(() => verifyJs(blobBundle, artifact, undefined, other.trustedRoot)).toThrow();
      await expect(verifyBrowser(blobBundle, artifact, undefined, other.trustedRoot)).rejects.toThrow();
    } finally {
      await other.stop();
    }
  });
});

describe('Fulcio authenticates like the real one', () => {
  async function request(token: string, pop?: (sub: string, key: ReturnType<typeof generateKeyPairSync>['privateKey']) => Buffer): Promise<{ status: number; body: Record<string, unknown> }> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let sub = '';
    try {
      sub = String(decodeJwt(token).sub);
    } catch {
      sub = '';
    }
    const proof = pop ? pop(sub, privateKey) : signData('sha256', Buffer.from(sub), privateKey);
    const res = await fetch(`${lab.urls.fulcio}/api/v2/signingCert`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        credentials: { oidcIdentityToken: token },
        publicKeyRequest: { publicKey: { algorithm: 'ECDSA', content: publicKey.export({ format: 'pem', type: 'spki' }).toString() }, proofOfPossession: proof.toString('base64') },
      }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('answers a good request with the v2 embedded-SCT chain (leaf, intermediate, root)', async () => {
    const { status, body } = await request(await oidc.mint('sigstore'));
    expect(status).toBe(200);
    const chain = (body.signedCertificateEmbeddedSct as { chain: { certificates: string[] } }).chain.certificates;
    expect(chain).toHaveLength(3);
    const root = (lab.trustedRoot.certificateAuthorities as Array<{ certChain: { certificates: Array<{ rawBytes: string }> } }>)[0]?.certChain.certificates;
    expect(chain.slice(1).map((p) => p.replace(/-----[A-Z ]+-----|\s/g, ''))).toEqual(root?.map((c) => c.rawBytes));
  });

  it('refuses bad tokens and bad proofs with 400 and the reason, issuing nothing', async () => {
    const issuedBefore = lab.fulcio.log.filter((r) => r.path === '/api/v2/signingCert' && r.status === 200).length;

    const stranger = await generateKeyPair('RS256');
    const forged = await new SignJWT({ ...oidc.claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'lab-oidc-1' })
      .setIssuer(oidc.issuer)
      .setSubject('repo:acme/widget:environment:release')
      .setAudience('sigstore')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(stranger.privateKey);
    const otherIssuer = new OidcService({}, 'lab-oidc-1');
    await otherIssuer.start();
    let wrongIssuer: string;
    try {
      wrongIssuer = await otherIssuer.mint('sigstore');
    } finally {
      await otherIssuer.stop();
    }

    const cases: Array<[string, Promise<{ status: number; body: Record<string, unknown> }>, RegExp]> = [
      ['token from another key', request(forged), /error processing the identity token: failed to verify signature/],
      ['wrong issuer', request(wrongIssuer), /error processing the identity token: oidc: id token issued by a different provider/],
      ['wrong audience', request(await oidc.mint('npm:registry.example.invalid')), /error processing the identity token: oidc: expected audience "sigstore"/],
      ['expired token', request(await oidc.mint('sigstore', { expiresIn: -60 })), /error processing the identity token: oidc: token is expired/],
      ['no token', request(''), /error processing the identity token: no identity token/],
      ['proof over another subject', request(await oidc.mint('sigstore'), (_sub, key) => signData('sha256', Buffer.from('someone else'), key)), /The signature supplied in the request could not be verified/],
      ['proof by another key', request(await oidc.mint('sigstore'), (sub) => signData('sha256', Buffer.from(sub), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)), /The signature supplied in the request could not be verified/],
    ];
    for (const [name, pending, message] of cases) {
      const { status, body } = await pending;
      expect(status, name).toBe(400);
      expect(body.code, name).toBe(3);
      expect(String(body.message), name).toMatch(message);
      expect(body, name).not.toHaveProperty('signedCertificateEmbeddedSct');
    }
    const issuedAfter = lab.fulcio.log.filter((r) => r.path === '/api/v2/signingCert' && r.status === 200).length;
    expect(issuedAfter).toBe(issuedBefore);
  });

  it('surfaces the refusal through @sigstore/sign', async () => {
    const err = await signBlob(Buffer.from('x'), { token: () => oidc.mint('sigstore', { expiresIn: -60 }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CA_CREATE_SIGNING_CERTIFICATE_ERROR' });
    expect(String((err as { cause?: Error }).cause?.message)).toMatch(/\(400\) There was an error processing the identity token: oidc: token is expired/);
  });
});

describe('Rekor keeps a real Merkle log', () => {
  it('serves entries by UUID and index, the log head, and refuses duplicates with 409', async () => {
    const entry = blobBundle.verificationMaterial.tlogEntries[0];
    if (!entry) throw new Error('no tlog entry');
    const byIndex = (await (await fetch(`${lab.urls.rekor}/api/v1/log/entries?logIndex=${entry.logIndex}`)).json()) as Record<string, { body: string; logIndex: number; verification: { inclusionProof: { treeSize: number } } }>;
    const [uuid, got] = Object.entries(byIndex)[0] ?? [];
    expect(uuid).toMatch(/^[0-9a-f]{80}$/);
    expect(got?.body).toBe(entry.canonicalizedBody);
    const byUuid = (await (await fetch(`${lab.urls.rekor}/api/v1/log/entries/${uuid}`)).json()) as Record<string, unknown>;
    expect(Object.keys(byUuid)).toEqual([uuid]);
    const short = await fetch(`${lab.urls.rekor}/api/v1/log/entries/${uuid?.slice(16)}`);
    expect(short.status).toBe(200);

    const head = (await (await fetch(`${lab.urls.rekor}/api/v1/log`)).json()) as { treeSize: number; rootHash: string; signedTreeHead: string; treeID: string };
    expect(head.treeSize).toBeGreaterThan(Number(entry.logIndex));
    expect(head.signedTreeHead).toContain(`\n${head.treeSize}\n${Buffer.from(head.rootHash, 'hex').toString('base64')}\n\n\u2014 ${new URL(lab.urls.rekor).host} `);

    // the same canonical entry again: the hashedrekord as sigstore-js proposes it
    const body = JSON.parse(Buffer.from(entry.canonicalizedBody, 'base64').toString('utf8')) as Record<string, unknown>;
    const dup = await fetch(`${lab.urls.rekor}/api/v1/log/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(dup.status).toBe(409);
    expect(dup.headers.get('location')).toBe(`/api/v1/log/entries/${uuid}`);
    expect(((await dup.json()) as { message: string }).message).toBe(`an equivalent entry already exists in the transparency log with UUID ${uuid}`);

    expect((await fetch(`${lab.urls.rekor}/api/v1/log/entries?logIndex=999999`)).status).toBe(404);
    expect((await fetch(`${lab.urls.rekor}/api/v1/log/entries/nothex`)).status).toBe(400);
  });

  it('gives sequential indexes and refuses entries whose signature does not verify', async () => {
    const a = await signBlob(Buffer.from('first'));
    const b = await signBlob(Buffer.from('second'));
    expect(Number(b.verificationMaterial.tlogEntries[0]?.logIndex)).toBe(Number(a.verificationMaterial.tlogEntries[0]?.logIndex) + 1);

    const body = JSON.parse(Buffer.from(a.verificationMaterial.tlogEntries[0]?.canonicalizedBody ?? '', 'base64').toString('utf8')) as { spec: { data: { hash: { value: string } } } };
    body.spec.data.hash.value = createHash('sha256').update('not what was signed').digest('hex');
    const res = await fetch(`${lab.urls.rekor}/api/v1/log/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/^error processing entry: verifying signature/);
  });
});

describe('checks with the openssl CLI', () => {
  it('chains the leaf to the Fulcio root, verifies the artifact signature and the RFC 3161 token', async () => {
    const ca = (lab.trustedRoot.certificateAuthorities as Array<{ certChain: { certificates: Array<{ rawBytes: string }> } }>)[0]?.certChain.certificates ?? [];
    const tsaChain = (lab.trustedRoot.timestampAuthorities as Array<{ certChain: { certificates: Array<{ rawBytes: string }> } }>)[0]?.certChain.certificates ?? [];
    const f = (name: string): string => path.join(work, name);
    const leafDer = leafOf(blobBundle);
    await writeFile(f('leaf.pem'), pem(leafDer));
    await writeFile(f('intermediate.pem'), pem(Buffer.from(ca[0]?.rawBytes ?? '', 'base64')));
    await writeFile(f('root.pem'), pem(Buffer.from(ca[1]?.rawBytes ?? '', 'base64')));
    const inside = Math.floor(X509Certificate.parse(leafDer as Buffer<ArrayBuffer>).notBefore.getTime() / 1000) + 60;
    const chain = await run('openssl', ['verify', '-CAfile', f('root.pem'), '-untrusted', f('intermediate.pem'), '-attime', String(inside), f('leaf.pem')]);
    expect(chain.stdout).toMatch(/leaf\.pem: OK/);
    const late = await run('openssl', ['verify', '-CAfile', f('root.pem'), '-untrusted', f('intermediate.pem'), '-attime', String(inside + 3600), f('leaf.pem')]).catch((e: { stdout?: string; stderr?: string }) => e);
    expect(`${late.stdout ?? ''}${late.stderr ?? ''}`).toMatch(/certificate has expired/);

    const sig = Buffer.from((blobBundle as { messageSignature?: { signature: string } }).messageSignature?.signature ?? '', 'base64');
    await writeFile(f('artifact.bin'), artifact);
    await writeFile(f('artifact.sig'), sig);
    await run('openssl', ['x509', '-in', f('leaf.pem'), '-pubkey', '-noout', '-out', f('leaf-pub.pem')]);
    const dgst = await run('openssl', ['dgst', '-sha256', '-verify', f('leaf-pub.pem'), '-signature', f('artifact.sig'), f('artifact.bin')]);
    expect(dgst.stdout).toMatch(/Verified OK/);

    // the token in the bundle timestamps the signature
    await writeFile(f('tsa-signer.pem'), pem(Buffer.from(tsaChain[0]?.rawBytes ?? '', 'base64')));
    await writeFile(f('tsa-root.pem'), pem(Buffer.from(tsaChain[1]?.rawBytes ?? '', 'base64')));
    const token = blobBundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps[0]?.signedTimestamp ?? '';
    await writeFile(f('bundle.tsr'), Buffer.from(token, 'base64'));
    const ts = await run('openssl', ['ts', '-verify', '-in', f('bundle.tsr'), '-data', f('artifact.sig'), '-CAfile', f('tsa-root.pem'), '-untrusted', f('tsa-signer.pem')]);
    expect(ts.stdout).toMatch(/Verification: OK/);
    const text = await run('openssl', ['ts', '-reply', '-in', f('bundle.tsr'), '-text']);
    expect(text.stdout).toMatch(/Time stamp: .* \d\d:\d\d:\d\d \d{4} GMT/); // whole seconds
    expect(text.stdout).toMatch(/Policy OID: 1\.3\.6\.1\.4\.1\.57264\.2/);
  });

  it('answers an openssl ts -query (DER request, nonce, certReq) with a token openssl verifies', async () => {
    const f = (name: string): string => path.join(work, name);
    const tsaChain = (lab.trustedRoot.timestampAuthorities as Array<{ certChain: { certificates: Array<{ rawBytes: string }> } }>)[0]?.certChain.certificates ?? [];
    await writeFile(f('tsa-root.pem'), pem(Buffer.from(tsaChain[1]?.rawBytes ?? '', 'base64')));
    await writeFile(f('query-data.bin'), Buffer.from('data timestamped by openssl'));
    await run('openssl', ['ts', '-query', '-data', f('query-data.bin'), '-sha256', '-cert', '-out', f('query.tsq')]);
    const res = await fetch(`${lab.urls.tsa}/api/v1/timestamp`, { method: 'POST', headers: { 'content-type': 'application/timestamp-query' }, body: await readFile(f('query.tsq')) });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/timestamp-reply');
    await writeFile(f('query.tsr'), Buffer.from(await res.arrayBuffer()));
    const ok = await run('openssl', ['ts', '-verify', '-in', f('query.tsr'), '-queryfile', f('query.tsq'), '-CAfile', f('tsa-root.pem')]);
    expect(ok.stdout).toMatch(/Verification: OK/);
  });
});

describe('the sigstore package through the lab TUF mirror', () => {
  it('fetches the lab trusted root over TUF and verifies with it', async () => {
    const rootFile = path.join(work, 'tuf-root.json');
    await lab.tufRootFile(rootFile);
    const cache = path.join(work, 'tuf-cache');
    const options = { tufMirrorURL: lab.urls.tufMirror, tufRootPath: rootFile, tufCachePath: cache, certificateIdentityURI: exact(SAN()), certificateIssuer: ISSUER(), retry: 0 };
    const signerInfo = await sigstore.verify(blobBundle, artifact, options);
    expect(signerInfo.identity?.subjectAlternativeName).toBe(SAN());
    await sigstore.verify(dsseBundle, options);
    await expect(sigstore.verify(blobBundle, Buffer.from('tampered'), options)).rejects.toThrow();
    await expect(sigstore.verify(blobBundle, artifact, { ...options, certificateIdentityURI: exact(`${SAN()}x`) })).rejects.toThrow(/identity/);
    const cached = JSON.parse(await readFile(path.join(cache, encodeURIComponent(new URL(lab.urls.tufMirror).host), 'targets', 'trusted_root.json'), 'utf8')) as unknown;
    expect(cached).toEqual(lab.trustedRoot);
  });
});

describe('chaos seen by the real clients', () => {
  it('a 503 on Rekor fails the signer without retries, and is retried past with them', async () => {
    lab.rekor.chaos.add({ route: '^/api/v1/log/entries$', method: 'POST', count: 1, fault: { kind: 'status', status: 503 } });
    const err = await signBlob(Buffer.from('chaos 1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TLOG_CREATE_ENTRY_ERROR' });
    expect(String((err as { cause?: Error }).cause?.message)).toMatch(/\(503\)/);

    lab.rekor.chaos.add({ route: '^/api/v1/log/entries$', method: 'POST', count: 1, fault: { kind: 'status', status: 503 } });
    const data = Buffer.from('chaos 2');
    const bundle = await signBlob(data, { rekor: { retry: { retries: 1, minTimeout: 10, maxTimeout: 10 } } });
    verifyJs(bundle, data);
    const posts = lab.rekor.log.filter((r) => r.method === 'POST').slice(-2);
    expect(posts.map((r) => r.status)).toEqual([503, 201]);
  });

  it('a reset on Fulcio fails the signer', async () => {
    lab.fulcio.chaos.add({ route: '^/api/v2/signingCert$', count: 1, fault: { kind: 'reset' } });
    const err = await signBlob(Buffer.from('chaos 3')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CA_CREATE_SIGNING_CERTIFICATE_ERROR' });
    expect(lab.fulcio.log.at(-1)).toMatchObject({ status: 'reset', fault: 'reset' });
  });

  it('a TSA that never answers fails the signer at its timeout', async () => {
    lab.tsa.chaos.add({ route: '^/api/v1/timestamp$', count: 1, fault: { kind: 'timeout' } });
    const err = await signBlob(Buffer.from('chaos 4'), { tsa: { timeout: 300 } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TSA_CREATE_TIMESTAMP_ERROR' });
    expect(String((err as { cause?: Error }).cause?.message)).toMatch(/timeout/i);
    expect(lab.tsa.log.at(-1)).toMatchObject({ status: 'timeout' });
  });
});

describe('the lab clock', () => {
  it('drives token expiry, certificate validity, log times and timestamps', async () => {
    const ahead = 20 * 60 * 1000;
    const clocked = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks`, clock: () => new Date(Date.now() + ahead) });
    try {
      const build = (token: () => Promise<string>): MessageSignatureBundleBuilder =>
        new MessageSignatureBundleBuilder({
          signer: new FulcioSigner({ fulcioBaseURL: clocked.urls.fulcio, identityProvider: { getToken: token }, retry: 0 }),
          witnesses: [new RekorWitness({ rekorBaseURL: clocked.urls.rekor, retry: 0 }), new TSAWitness({ tsaBaseURL: clocked.urls.tsa, retry: 0 })],
        });
      const data = Buffer.from('signed on the lab clock');
      // a 5-minute token has expired for a lab 20 minutes ahead
      const err = await build(() => oidc.mint('sigstore')).create({ data }).catch((e: unknown) => e);
      expect(String((err as { cause?: Error }).cause?.message)).toMatch(/token is expired/);

      const bundle = bundleToJSON(await build(() => oidc.mint('sigstore', { expiresIn: 3600 })).create({ data }));
      const floor = Date.now() + ahead - 60_000;
      expect(X509Certificate.parse(leafOf(bundle) as Buffer<ArrayBuffer>).notBefore.getTime()).toBeGreaterThan(floor);
      expect(Number(bundle.verificationMaterial.tlogEntries[0]?.integratedTime) * 1000).toBeGreaterThan(floor);
      const token = Buffer.from(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps[0]?.signedTimestamp ?? '', 'base64');
      expect(RFC3161Timestamp.parse(token as Buffer<ArrayBuffer>).signingTime.getTime()).toBeGreaterThan(floor);
      verifyJs(bundle, data, undefined, clocked.trustedRoot);
    } finally {
      await clocked.stop();
    }
  });
});

describe('restart with the same state folder', () => {
  it('refuses a second lab on a state folder whose ports are taken', async () => {
    const err = await startSigstore(labOptions()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LAB_SIGSTORE_PORT_IN_USE' });
    expect((err as { hint?: string }).hint).toMatch(/ports\.json/);
    expect((await fetch(`${lab.urls.rekor}/api/v1/log`)).status).toBe(200); // the running lab is unharmed
  });

  it('keeps the trusted root byte-identical, the log, and the old bundles verifiable', async () => {
    const before = path.join(work, 'root-before.json');
    const after = path.join(work, 'root-after.json');
    await lab.writeTrustedRoot(before);
    const tufBefore = path.join(work, 'tuf-before.json');
    await lab.tufRootFile(tufBefore);
    const oldRoot = lab.trustedRoot;
    const oldUrls = lab.urls;
    const head = (await (await fetch(`${lab.urls.rekor}/api/v1/log`)).json()) as { treeSize: number; rootHash: string };

    await lab.stop();
    lab = await startSigstore(labOptions());

    expect(lab.urls).toEqual(oldUrls);
    expect(lab.trustedRoot).toEqual(oldRoot);
    await lab.writeTrustedRoot(after);
    expect((await readFile(after)).equals(await readFile(before))).toBe(true);
    const tufAfter = path.join(work, 'tuf-after.json');
    await lab.tufRootFile(tufAfter);
    expect((await readFile(tufAfter)).equals(await readFile(tufBefore))).toBe(true);

    const again = (await (await fetch(`${lab.urls.rekor}/api/v1/log`)).json()) as { treeSize: number; rootHash: string };
    expect([again.treeSize, again.rootHash]).toEqual([head.treeSize, head.rootHash]);

    verifyJs(blobBundle, artifact);
    verifyJs(toBundleV03(blobBundle), artifact);
    verifyJs(dsseBundle, undefined);
    await expect(verifyBrowser(blobBundle, artifact)).resolves.toBe(true);
    await expect(verifyBrowser(dsseBundle, artifact)).resolves.toBe(true);

    const fresh = await signBlob(Buffer.from('after restart'));
    expect(Number(fresh.verificationMaterial.tlogEntries[0]?.logIndex)).toBe(head.treeSize);
    verifyJs(fresh, Buffer.from('after restart'));
  });
});
