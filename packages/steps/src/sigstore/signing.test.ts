import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { SigstoreVerifier, type SigstoreBundle, type TrustedRoot as BrowserTrustedRoot } from '@freedomofpress/sigstore-browser';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcService, startSigstore, type SigstoreLab } from '@mcp-release/lab';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { githubIdentity, mapLimit, ReleaseSigner } from './signing.js';

const oidc = new OidcService();
let sigstore: SigstoreLab;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  await oidc.start();
  sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks` });
  env = { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken };
});
afterAll(async () => {
  await sigstore.stop();
  await oidc.stop();
});

const SAN = 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/main';

function verifier(): Verifier {
  return new Verifier(toTrustMaterial(TrustedRoot.fromJSON(sigstore.trustedRoot)));
}

describe('ReleaseSigner', () => {
  it('signs a file in one streamed pass into a v0.3 bundle with one certificate, a log entry and a timestamp', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'libvmaf.so');
    const data = randomBytes(3 * 1024 * 1024 + 5);
    await writeFile(file, data);
    const signer = new ReleaseSigner({ fulcio: sigstore.urls.fulcio, rekor: sigstore.urls.rekor, tsa: sigstore.urls.tsa }, githubIdentity(env));
    const { bundle, size } = await signer.signFile(file);
    expect(size).toBe(data.length);
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.verificationMaterial.certificate?.rawBytes).toBeTruthy();
    expect(bundle.verificationMaterial.x509CertificateChain).toBeUndefined();
    expect(bundle.verificationMaterial.tlogEntries[0]?.inclusionProof?.checkpoint?.envelope).toBeTruthy();
    expect(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
    const policy = { subjectAlternativeName: SAN, extensions: { issuer: oidc.issuer } };
    expect(() => verifier().verify(toSignedEntity(bundleFromJSON(bundle), data), policy)).not.toThrow();
    expect(() => verifier().verify(toSignedEntity(bundleFromJSON(bundle), Buffer.concat([data, Buffer.of(1)])), policy)).toThrow();

    const statement = { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'libvmaf.so', digest: { sha256: 'ab'.repeat(32) } }], predicateType: 'https://example.invalid/p', predicate: {} };
    const dsse = await signer.signStatement(statement);
    expect(dsse.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(dsse.verificationMaterial.certificate).toBeTruthy();
    expect(() => verifier().verify(toSignedEntity(bundleFromJSON(dsse)), policy)).not.toThrow();
    expect(JSON.parse(Buffer.from(dsse.dsseEnvelope?.payload as string, 'base64').toString())).toEqual(statement);
    void readFile;
  });

  it('signs files concurrently from a cold start with one certificate: every bundle holds its own key, certificate and log entry', async () => {
    const dir = await tempDir();
    const files = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const file = path.join(dir, `f${i}`);
        await writeFile(file, randomBytes(1000 + i));
        return file;
      }),
    );
    const signer = new ReleaseSigner({ fulcio: sigstore.urls.fulcio, rekor: sigstore.urls.rekor, tsa: sigstore.urls.tsa }, githubIdentity(env));
    const signed = await Promise.all(files.map((f) => signer.signFile(f)));
    const policy = { subjectAlternativeName: SAN, extensions: { issuer: oidc.issuer } };
    for (const [i, s] of signed.entries()) {
      expect(() => verifier().verify(toSignedEntity(bundleFromJSON(s.bundle), Buffer.from([])), policy)).toThrow();
      const data = await readFile(files[i] as string);
      expect(() => verifier().verify(toSignedEntity(bundleFromJSON(s.bundle), data), policy)).not.toThrow();
    }
    expect(new Set(signed.map((s) => s.bundle.verificationMaterial.certificate?.rawBytes)).size).toBe(1);
  });

  it('makes bundles that an independent verifier and OpenSSL accept', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'models.tar.gz');
    const data = randomBytes(200_000);
    await writeFile(file, data);
    const signer = new ReleaseSigner({ fulcio: sigstore.urls.fulcio, rekor: sigstore.urls.rekor, tsa: sigstore.urls.tsa }, githubIdentity(env));
    const { bundle } = await signer.signFile(file);

    // @freedomofpress/sigstore-browser: independent code, same trust root, exact identity
    const browser = new SigstoreVerifier();
    await browser.loadSigstoreRoot(sigstore.trustedRoot as unknown as BrowserTrustedRoot);
    await expect(browser.verifyArtifact(SAN, oidc.issuer, bundle as unknown as SigstoreBundle, new Uint8Array(data))).resolves.toBeTruthy();
    await expect(browser.verifyArtifact(`${SAN}x`, oidc.issuer, bundle as unknown as SigstoreBundle, new Uint8Array(data))).rejects.toThrow();
    await expect(browser.verifyArtifact(SAN, oidc.issuer, bundle as unknown as SigstoreBundle, new Uint8Array(Buffer.concat([data, Buffer.of(0)])))).rejects.toThrow();

    // OpenSSL: the chain to the Fulcio root at signing time, the signature over the file, the RFC 3161 token
    const run = promisify(execFile);
    const pem = (der: Buffer): string => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
    const chainOf = (key: string): Buffer[] =>
      ((sigstore.trustedRoot[key] as Array<{ certChain: { certificates: Array<{ rawBytes: string }> } }>)[0]?.certChain.certificates ?? []).map((c) => Buffer.from(c.rawBytes, 'base64'));
    const f = (n: string): string => path.join(dir, n);
    const leaf = Buffer.from(bundle.verificationMaterial.certificate?.rawBytes as string, 'base64');
    const [intermediate, root] = chainOf('certificateAuthorities');
    await writeFile(f('leaf.pem'), pem(leaf));
    await writeFile(f('intermediate.pem'), pem(intermediate as Buffer));
    await writeFile(f('root.pem'), pem(root as Buffer));
    const at = String(Math.floor(Date.parse(new X509Certificate(leaf).validFrom) / 1000) + 30);
    expect((await run('openssl', ['verify', '-CAfile', f('root.pem'), '-untrusted', f('intermediate.pem'), '-attime', at, f('leaf.pem')])).stdout).toMatch(/OK/);
    await writeFile(f('sig.bin'), Buffer.from(bundle.messageSignature?.signature as string, 'base64'));
    await run('openssl', ['x509', '-in', f('leaf.pem'), '-pubkey', '-noout', '-out', f('pub.pem')]);
    expect((await run('openssl', ['dgst', '-sha256', '-verify', f('pub.pem'), '-signature', f('sig.bin'), file])).stdout).toMatch(/Verified OK/);
    const [tsaSigner, tsaRoot] = chainOf('timestampAuthorities');
    await writeFile(f('tsa-signer.pem'), pem(tsaSigner as Buffer));
    await writeFile(f('tsa-root.pem'), pem(tsaRoot as Buffer));
    await writeFile(f('ts.tsr'), Buffer.from(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps[0]?.signedTimestamp as string, 'base64'));
    expect((await run('openssl', ['ts', '-verify', '-in', f('ts.tsr'), '-data', f('sig.bin'), '-CAfile', f('tsa-root.pem'), '-untrusted', f('tsa-signer.pem')])).stdout).toMatch(/Verification: OK/);
  });

  it('says exactly which permission is missing when the job has no OIDC token', async () => {
    const signer = new ReleaseSigner({ fulcio: sigstore.urls.fulcio, rekor: sigstore.urls.rekor }, githubIdentity({}));
    const err = await caught(() => signer.certificate());
    expect(err).toMatchObject({ code: 'OIDC_TOKEN_UNAVAILABLE' });
    expect(err.hint).toMatch(/permissions: id-token: write/);
  });

  it('names the failing service when Rekor keeps failing, after retrying it', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'x'), 'x');
    sigstore.rekor.chaos.add({ route: '^/api/v1/log/entries$', method: 'POST', count: 10, fault: { kind: 'status', status: 503 } });
    try {
      const signer = new ReleaseSigner({ fulcio: sigstore.urls.fulcio, rekor: sigstore.urls.rekor }, githubIdentity(env));
      const err = await caught(() => signer.signFile(path.join(dir, 'x')));
      expect(err).toMatchObject({ code: 'SIGSTORE_WITNESS_FAILED', message: expect.stringContaining('Rekor') });
      expect(sigstore.rekor.log.filter((r) => r.fault === 'status').length).toBe(4); // the first try and three retries
    } finally {
      sigstore.rekor.chaos.clear();
    }
  });

  it('mapLimit keeps order and bounds concurrency', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running -= 1;
      return n * 2;
    });
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(peak).toBe(3);
  });
});
