import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { LabError } from '../errors.js';

/** The lab's TLS material for the GitHub stand-in: a CA, and a leaf for localhost and 127.0.0.1 it signed. */
export interface GithubTlsMaterial {
  /** PEM of the lab CA certificate (what clients trust). */
  caCert: string;
  /** PEM of the leaf certificate the server presents. */
  cert: string;
  /** PKCS#8 PEM of the leaf's private key. */
  key: string;
}

type LabCrypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1]>;
type KeyPair = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f; // a positive serial number
  return bytes.toString('hex');
}

/**
 * Makes a fresh CA and a server certificate for `localhost` / 127.0.0.1. The CA's private key is
 * used once and dropped: only the leaf key is kept, so the CA can never sign anything else.
 */
export async function createGithubTls(): Promise<GithubTlsMaterial> {
  const crypto = webcrypto as unknown as LabCrypto;
  try {
    const notBefore = new Date(Date.now() - DAY);
    const notAfter = new Date(Date.now() + 3650 * DAY);
    const caKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
    const ca = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serial(),
        name: 'CN=Release Lab GitHub CA, O=Release Lab',
        notBefore,
        notAfter,
        keys: caKeys,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    const leafKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
    const leaf = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: 'CN=localhost, O=Release Lab',
        issuer: ca.subject,
        notBefore,
        notAfter,
        publicKey: leafKeys.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension([
            { type: 'dns', value: 'localhost' },
            { type: 'ip', value: '127.0.0.1' },
          ]),
          await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
          await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    const pkcs8 = await crypto.subtle.exportKey('pkcs8', leafKeys.privateKey);
    return { caCert: ca.toString('pem'), cert: leaf.toString('pem'), key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
  } catch (err) {
    throw new LabError('LAB_GITHUB_TLS', 'could not create the TLS certificates of the GitHub stand-in', { cause: err, hint: 'start it with tls: false, or check that @peculiar/x509 is installed' });
  }
}
