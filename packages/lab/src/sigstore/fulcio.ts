import { createHash, createPublicKey, sign, verify, webcrypto, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as x509 from '@peculiar/x509';
import { X509Certificate as CoreCertificate } from '@sigstore/core';
import * as asn1js from 'asn1js';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { readBody, sendJson, type LabService } from '../harness.js';
import { curveOf } from './ecdsa.js';
import { certificatePem, randomSerial, type Material, type SigningKey } from './pki.js';

/**
 * Fulcio's v2 API (`POST /api/v2/signingCert`) for GitHub Actions ID tokens: it authenticates the
 * token against the issuer's JWKS, checks the proof of possession over the token's `sub`, and issues
 * a 10-minute leaf with the GitHub workflow extensions and an embedded SCT from the lab's CT log.
 */

const wc = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

export const FULCIO_AUDIENCE = 'sigstore';
const LEAF_LIFETIME_MS = 10 * 60 * 1000;
const OID_SCT_LIST = '1.3.6.1.4.1.11129.2.4.2';

// Fulcio's client-facing messages (gRPC InvalidArgument, HTTP 400); the lab adds the reason after a colon.
export const FULCIO_MESSAGES = {
  invalidIdentityToken: 'There was an error processing the identity token',
  invalidPublicKey: 'The public key supplied in the request could not be parsed',
  insecurePublicKey: 'The public key supplied in the request is insecure',
  invalidSignature: 'The signature supplied in the request could not be verified',
} as const;

const GRPC_INVALID_ARGUMENT = 3;

class FulcioRefusal extends Error {
  constructor(
    readonly status: number,
    readonly clientMessage: string,
    readonly reason: string,
  ) {
    super(`${clientMessage}: ${reason}`);
  }
}

const refuse = (message: keyof typeof FULCIO_MESSAGES, reason: string): FulcioRefusal => new FulcioRefusal(400, FULCIO_MESSAGES[message], reason);

interface SigningCertRequest {
  credentials?: { oidcIdentityToken?: string };
  publicKeyRequest?: { publicKey?: { algorithm?: string; content?: string }; proofOfPossession?: string };
  certificateSigningRequest?: string;
}

export interface FulcioOptions {
  material: Material;
  oidcIssuer: string;
  jwksUri: string;
  clock: () => Date;
}

/** Claims Fulcio's GitHub provider requires; a token without one of them is refused. */
const REQUIRED_CLAIMS = ['job_workflow_ref', 'sha', 'event_name', 'repository', 'ref', 'runner_environment', 'repository_owner', 'repository_visibility', 'workflow_ref', 'run_id', 'run_attempt'] as const;

export interface FulcioExtension {
  oid: string;
  value: string;
  /** Fulcio's first issuer and GitHub extensions (1.1–1.6) hold the raw string, not DER. */
  raw?: boolean;
}

/**
 * The SAN and the Fulcio extensions for a GitHub Actions token, as Fulcio's GitHub CI provider
 * renders them. Claims GitHub sends that the lab's token service may not (workflow, repository_id,
 * repository_owner_id, job_workflow_sha, workflow_sha) are used when present; the digests fall
 * back to `sha`, the others are left out.
 */
export function githubIdentity(claims: JWTPayload, issuer: string): { san: string; extensions: FulcioExtension[] } {
  const c = (name: string): string | undefined => {
    const v = claims[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  for (const claim of REQUIRED_CLAIMS) {
    if (!c(claim)) throw refuse('invalidIdentityToken', `missing ${claim} claim in ID token`);
  }
  const need = (name: (typeof REQUIRED_CLAIMS)[number]): string => c(name) as string;
  const url = 'https://github.com';
  const san = `${url}/${need('job_workflow_ref')}`;
  const sha = need('sha');
  const list: Array<[string, string | undefined, boolean?]> = [
    ['1.3.6.1.4.1.57264.1.1', issuer, true],
    ['1.3.6.1.4.1.57264.1.2', need('event_name'), true],
    ['1.3.6.1.4.1.57264.1.3', sha, true],
    ['1.3.6.1.4.1.57264.1.4', c('workflow'), true],
    ['1.3.6.1.4.1.57264.1.5', need('repository'), true],
    ['1.3.6.1.4.1.57264.1.6', need('ref'), true],
    ['1.3.6.1.4.1.57264.1.8', issuer],
    ['1.3.6.1.4.1.57264.1.9', san],
    ['1.3.6.1.4.1.57264.1.10', c('job_workflow_sha') ?? sha],
    ['1.3.6.1.4.1.57264.1.11', need('runner_environment')],
    ['1.3.6.1.4.1.57264.1.12', `${url}/${need('repository')}`],
    ['1.3.6.1.4.1.57264.1.13', sha],
    ['1.3.6.1.4.1.57264.1.14', need('ref')],
    ['1.3.6.1.4.1.57264.1.15', c('repository_id')],
    ['1.3.6.1.4.1.57264.1.16', `${url}/${need('repository_owner')}`],
    ['1.3.6.1.4.1.57264.1.17', c('repository_owner_id')],
    ['1.3.6.1.4.1.57264.1.18', `${url}/${need('workflow_ref')}`],
    ['1.3.6.1.4.1.57264.1.19', c('workflow_sha') ?? sha],
    ['1.3.6.1.4.1.57264.1.20', need('event_name')],
    ['1.3.6.1.4.1.57264.1.21', `${url}/${need('repository')}/actions/runs/${need('run_id')}/attempts/${need('run_attempt')}`],
    ['1.3.6.1.4.1.57264.1.22', need('repository_visibility')],
    ['1.3.6.1.4.1.57264.1.23', c('environment')],
    ['1.3.6.1.4.1.57264.1.24', c('sub')],
  ];
  const extensions: FulcioExtension[] = [];
  for (const [oid, value, raw] of list) if (value !== undefined) extensions.push({ oid, value, ...(raw ? { raw } : {}) });
  return { san, extensions };
}

/** An RFC 6962 SCT for a precertificate, signed by the lab's CT log. */
export function signedCertificateTimestamp(ctlog: SigningKey, issuerSpki: Buffer, tbs: Buffer, time: Date): Buffer {
  const timestamp = Buffer.alloc(8);
  timestamp.writeBigUInt64BE(BigInt(time.getTime()));
  const tbsLength = Buffer.alloc(3);
  tbsLength.writeUIntBE(tbs.length, 0, 3);
  const signed = Buffer.concat([
    Buffer.from([0x00, 0x00]), // v1, certificate_timestamp
    timestamp,
    Buffer.from([0x00, 0x01]), // precert_entry
    createHash('sha256').update(issuerSpki).digest(),
    tbsLength,
    tbs,
    Buffer.from([0x00, 0x00]), // no extensions
  ]);
  const signature = sign('sha256', signed, ctlog.privateKey);
  const sigLength = Buffer.alloc(2);
  sigLength.writeUInt16BE(signature.length);
  return Buffer.concat([Buffer.from([0x00]), ctlog.keyId, timestamp, Buffer.from([0x00, 0x00]), Buffer.from([0x04, 0x03]), sigLength, signature]);
}

function sctListExtension(sct: Buffer): x509.Extension {
  const entry = Buffer.alloc(2);
  entry.writeUInt16BE(sct.length);
  const total = Buffer.alloc(2);
  total.writeUInt16BE(sct.length + 2);
  // RFC 6962 §3.3: the TLS-encoded SignedCertificateTimestampList inside an OCTET STRING
  return new x509.Extension(OID_SCT_LIST, false, new asn1js.OctetString({ valueHex: Buffer.concat([total, entry, sct]) }).toBER());
}

function parsePublicKey(content: string | undefined): KeyObject {
  if (!content) throw refuse('invalidPublicKey', 'publicKeyRequest.publicKey.content is empty');
  try {
    return content.includes('-----BEGIN') ? createPublicKey(content) : createPublicKey({ key: Buffer.from(content, 'base64'), format: 'der', type: 'spki' });
  } catch (err) {
    throw refuse('invalidPublicKey', (err as Error).message);
  }
}

/** The digest Fulcio uses to check the proof of possession for this key type. */
function popDigest(key: KeyObject): string | null {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const crv = curveOf(key);
      if (crv === 'P-256') return 'sha256';
      if (crv === 'P-384') return 'sha384';
      if (crv === 'P-521') return 'sha512';
      throw refuse('insecurePublicKey', `unsupported elliptic curve ${crv ?? 'unknown'}`);
    }
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < 2048) throw refuse('insecurePublicKey', `RSA key of ${bits} bits; at least 2048 are required`);
      return 'sha256';
    }
    case 'ed25519':
      return null;
    default:
      throw refuse('insecurePublicKey', `unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

export class Fulcio {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  /** Certificates issued since start (a count for tests and the request log). */
  issued = 0;

  constructor(private readonly options: FulcioOptions) {
    this.jwks = createRemoteJWKSet(new URL(options.jwksUri));
  }

  routes(service: LabService): void {
    service.route('POST', '/api/v2/signingCert', (req, res) => this.signingCert(req, res));
    service.route('GET', '/api/v2/trustBundle', (_req, res) =>
      sendJson(res, 200, { chains: [{ certificates: [certificatePem(this.options.material.fulcio.intermediate), certificatePem(this.options.material.fulcio.root)] }] }),
    );
    service.route('GET', '/api/v2/configuration', (_req, res) =>
      sendJson(res, 200, { issuers: [{ issuerUrl: this.options.oidcIssuer, audience: FULCIO_AUDIENCE, challengeClaim: 'sub', ciProvider: 'github-workflow' }] }),
    );
  }

  private async signingCert(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      let request: SigningCertRequest;
      try {
        request = JSON.parse((await readBody(req, 1024 * 1024)).toString('utf8')) as SigningCertRequest;
        if (!request || typeof request !== 'object') throw new Error('not an object');
      } catch (err) {
        throw new FulcioRefusal(400, 'invalid request body', (err as Error).message);
      }
      const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const token = request.credentials?.oidcIdentityToken || bearer;
      const claims = await this.authenticate(token);
      if (request.certificateSigningRequest) throw refuse('invalidPublicKey', 'the lab Fulcio takes publicKeyRequest, not a certificate signing request');
      const publicKey = parsePublicKey(request.publicKeyRequest?.publicKey?.content);
      const digest = popDigest(publicKey);
      const proof = Buffer.from(request.publicKeyRequest?.proofOfPossession ?? '', 'base64');
      const subject = typeof claims.sub === 'string' ? claims.sub : '';
      let ok = false;
      try {
        ok = proof.length > 0 && verify(digest, Buffer.from(subject), publicKey, proof);
      } catch {
        ok = false;
      }
      if (!ok) throw refuse('invalidSignature', `the proof of possession is not a signature over the token subject "${subject}" by the supplied key`);
      const chain = await this.issue(publicKey, claims);
      sendJson(res, 200, { signedCertificateEmbeddedSct: { chain: { certificates: chain } } });
    } catch (err) {
      if (!(err instanceof FulcioRefusal)) throw err;
      sendJson(res, err.status, { code: GRPC_INVALID_ARGUMENT, message: err.message, details: [] });
    }
  }

  private async authenticate(token: string | undefined): Promise<JWTPayload> {
    if (!token) throw refuse('invalidIdentityToken', 'no identity token in credentials.oidcIdentityToken or the Authorization header');
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch (err) {
      throw refuse('invalidIdentityToken', `oidc: malformed jwt: ${(err as Error).message}`);
    }
    if (unverified.iss !== this.options.oidcIssuer) {
      throw refuse('invalidIdentityToken', `oidc: id token issued by a different provider, expected "${this.options.oidcIssuer}" got "${String(unverified.iss)}"`);
    }
    const check = async (): Promise<JWTPayload> => (await jwtVerify(token, this.jwks, { issuer: this.options.oidcIssuer, audience: FULCIO_AUDIENCE, currentDate: this.options.clock() })).payload;
    try {
      try {
        return await check();
      } catch (err) {
        // The issuer may have replaced its key under the same key ID (a restarted lab issuer
        // without a state folder): fetch the key set again once before refusing.
        if ((err as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' || this.jwks.coolingDown) throw err;
        await this.jwks.reload();
        return await check();
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      const claim = (err as { claim?: string }).claim;
      if (code === 'ERR_JWT_EXPIRED') {
        throw refuse('invalidIdentityToken', `oidc: token is expired (Token Expiry: ${new Date((unverified.exp ?? 0) * 1000).toISOString()})`);
      }
      if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim === 'aud') {
        throw refuse('invalidIdentityToken', `oidc: expected audience "${FULCIO_AUDIENCE}" got ${JSON.stringify(unverified.aud ?? [])}`);
      }
      if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' || code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
        throw refuse('invalidIdentityToken', `failed to verify signature: the token is not signed by a key in ${this.options.jwksUri}`);
      }
      throw refuse('invalidIdentityToken', `oidc: ${(err as Error).message}`);
    }
  }

  private async issue(publicKey: KeyObject, claims: JWTPayload): Promise<string[]> {
    const { material, clock, oidcIssuer } = this.options;
    const { san, extensions } = githubIdentity(claims, oidcIssuer);
    const now = new Date(Math.floor(clock().getTime() / 1000) * 1000);
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const params = {
      serialNumber: randomSerial(),
      issuer: material.fulcio.intermediateName,
      notBefore: now,
      notAfter: new Date(now.getTime() + LEAF_LIFETIME_MS),
      publicKey: spki,
      signingKey: material.fulcio.intermediateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
    };
    const base = [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
      await x509.SubjectKeyIdentifierExtension.create(spki, false, wc),
      await x509.AuthorityKeyIdentifierExtension.create(material.fulcio.intermediateSpki, false, wc),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: san }], true),
      ...extensions.map((e) => new x509.Extension(e.oid, false, e.raw ? Buffer.from(e.value, 'utf8') : new asn1js.Utf8String({ value: e.value }).toBER())),
    ];
    // The precertificate: the final certificate without its SCT list. The SCT signs its TBS as a
    // verifier rebuilds it (parse, drop the SCT extension, re-encode).
    const precert = await x509.X509CertificateGenerator.create({ ...params, extensions: base }, wc);
    const tbs = CoreCertificate.parse(Buffer.from(precert.rawData)).tbsCertificate.toDER();
    const sct = signedCertificateTimestamp(material.ctlog, material.fulcio.intermediateSpki, tbs, clock());
    const leaf = await x509.X509CertificateGenerator.create({ ...params, extensions: [...base, sctListExtension(sct)] }, wc);
    this.issued += 1;
    return [certificatePem(Buffer.from(leaf.rawData)), certificatePem(material.fulcio.intermediate), certificatePem(material.fulcio.root)];
  }
}
