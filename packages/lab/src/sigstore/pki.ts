import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { X509Certificate as CoreCertificate } from '@sigstore/core';
import { persisted } from '../state.js';

/**
 * The lab's key material: the Fulcio CA (root and intermediate), the CT log key, the Rekor key,
 * the timestamp authority (root and signing certificate) and the TUF role keys. Generated once
 * and kept in the state folder, so the trusted root stays the same across restarts.
 */

// The webcrypto provider @peculiar/x509 signs with.
const wc = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

export const LAB_ORGANIZATION = 'mcp-release.lab';
const YEAR_MS = 365 * 24 * 3600 * 1000;

interface StoredMaterial {
  version: 1;
  /** Start of validity of every lab authority (whole seconds). */
  validFrom: string;
  fulcio: { rootKey: string; rootCert: string; intermediateKey: string; intermediateCert: string };
  ctlog: { key: string };
  rekor: { key: string; treeId: string };
  tsa: { rootKey: string; rootCert: string; signerKey: string; signerCert: string };
  tuf: { root: string; targets: string; snapshot: string; timestamp: string };
}

export type TufRole = 'root' | 'targets' | 'snapshot' | 'timestamp';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo, DER. */
  spki: Buffer;
  /** SHA-256 of the SubjectPublicKeyInfo: RFC 6962 log ID, Rekor log ID. */
  keyId: Buffer;
}

export interface Material {
  validFrom: Date;
  fulcio: {
    root: Buffer;
    intermediate: Buffer;
    intermediateName: x509.Name;
    intermediateKey: webcrypto.CryptoKey;
    intermediateSpki: Buffer;
  };
  ctlog: SigningKey;
  rekor: SigningKey & { treeId: string };
  tsa: { root: Buffer; signer: Buffer; signerKey: SigningKey; signerCert: CoreCertificate };
  tuf: Record<TufRole, SigningKey>;
}

const pemToDer = (pem: string): Buffer =>
  Buffer.from(
    pem
      .replace(/-----(BEGIN|END) [A-Z ]+-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );

function newKey(curve: 'P-256' | 'P-384'): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

function signingKey(pkcs8: string): SigningKey {
  const privateKey = createPrivateKey(pkcs8);
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey, spki, keyId: createHash('sha256').update(spki).digest() };
}

async function cryptoKey(pkcs8: string, curve: 'P-256' | 'P-384'): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', pemToDer(pkcs8), { name: 'ECDSA', namedCurve: curve }, false, ['sign']) as Promise<webcrypto.CryptoKey>;
}

/** A positive serial number of 20 random bytes, hexadecimal. */
export function randomSerial(): string {
  const bytes = randomBytes(20);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

const name = (cn: string): string => `CN=${cn}, O=${LAB_ORGANIZATION}`;

async function createMaterial(now: Date): Promise<StoredMaterial> {
  // Backdated a minute so that clocks a little behind the lab's still see the authorities as valid.
  const validFrom = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
  const notAfter = new Date(validFrom.getTime() + 10 * YEAR_MS);
  const p384 = { name: 'ECDSA', hash: 'SHA-384' };

  const fulcioRootKey = newKey('P-384');
  const fulcioIntermediateKey = newKey('P-384');
  const tsaRootKey = newKey('P-384');
  const tsaSignerKey = newKey('P-256');
  const spki = (pkcs8: string): Buffer => signingKey(pkcs8).spki;

  const rootSigner = await cryptoKey(fulcioRootKey, 'P-384');
  const rootCert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name('lab-fulcio-root'),
      issuer: name('lab-fulcio-root'),
      notBefore: validFrom,
      notAfter,
      publicKey: spki(fulcioRootKey),
      signingKey: rootSigner,
      signingAlgorithm: p384,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(spki(fulcioRootKey), false, wc),
      ],
    },
    wc,
  );
  const intermediateCert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name('lab-fulcio-intermediate'),
      issuer: rootCert.subjectName,
      notBefore: validFrom,
      notAfter,
      publicKey: spki(fulcioIntermediateKey),
      signingKey: rootSigner,
      signingAlgorithm: p384,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
        await x509.SubjectKeyIdentifierExtension.create(spki(fulcioIntermediateKey), false, wc),
        await x509.AuthorityKeyIdentifierExtension.create(spki(fulcioRootKey), false, wc),
      ],
    },
    wc,
  );

  const tsaRootSigner = await cryptoKey(tsaRootKey, 'P-384');
  const tsaRootCert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name('lab-tsa-root'),
      issuer: name('lab-tsa-root'),
      notBefore: validFrom,
      notAfter,
      publicKey: spki(tsaRootKey),
      signingKey: tsaRootSigner,
      signingAlgorithm: p384,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(spki(tsaRootKey), false, wc),
      ],
    },
    wc,
  );
  const tsaSignerCert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name('lab-tsa-signer'),
      issuer: tsaRootCert.subjectName,
      notBefore: validFrom,
      notAfter,
      publicKey: spki(tsaSignerKey),
      signingKey: tsaRootSigner,
      signingAlgorithm: p384,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.timeStamping], true),
        await x509.SubjectKeyIdentifierExtension.create(spki(tsaSignerKey), false, wc),
        await x509.AuthorityKeyIdentifierExtension.create(spki(tsaRootKey), false, wc),
      ],
    },
    wc,
  );

  return {
    version: 1,
    validFrom: validFrom.toISOString(),
    fulcio: { rootKey: fulcioRootKey, rootCert: rootCert.toString('pem'), intermediateKey: fulcioIntermediateKey, intermediateCert: intermediateCert.toString('pem') },
    ctlog: { key: newKey('P-256') },
    rekor: { key: newKey('P-256'), treeId: BigInt(`0x${randomBytes(7).toString('hex')}`).toString() },
    tsa: { rootKey: tsaRootKey, rootCert: tsaRootCert.toString('pem'), signerKey: tsaSignerKey, signerCert: tsaSignerCert.toString('pem') },
    tuf: { root: newKey('P-256'), targets: newKey('P-256'), snapshot: newKey('P-256'), timestamp: newKey('P-256') },
  };
}

/** Loads the lab's key material from the state folder, creating it on first use. */
export async function loadMaterial(stateDir: string | undefined, now: Date): Promise<Material> {
  const stored = await persisted<StoredMaterial>(stateDir, 'sigstore', () => createMaterial(now));
  const intermediate = new x509.X509Certificate(stored.fulcio.intermediateCert);
  const tsaSigner = pemToDer(stored.tsa.signerCert);
  return {
    validFrom: new Date(stored.validFrom),
    fulcio: {
      root: pemToDer(stored.fulcio.rootCert),
      intermediate: pemToDer(stored.fulcio.intermediateCert),
      intermediateName: intermediate.subjectName,
      intermediateKey: await cryptoKey(stored.fulcio.intermediateKey, 'P-384'),
      intermediateSpki: signingKey(stored.fulcio.intermediateKey).spki,
    },
    ctlog: signingKey(stored.ctlog.key),
    rekor: { ...signingKey(stored.rekor.key), treeId: stored.rekor.treeId },
    tsa: {
      root: pemToDer(stored.tsa.rootCert),
      signer: tsaSigner,
      signerKey: signingKey(stored.tsa.signerKey),
      signerCert: CoreCertificate.parse(tsaSigner as Buffer<ArrayBuffer>),
    },
    tuf: {
      root: signingKey(stored.tuf.root),
      targets: signingKey(stored.tuf.targets),
      snapshot: signingKey(stored.tuf.snapshot),
      timestamp: signingKey(stored.tuf.timestamp),
    },
  };
}

/** PEM of a DER certificate, 64-column lines, as Go's encoders write it. */
export function certificatePem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

export { pemToDer };
