import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import {
  BUNDLE_V01_MEDIA_TYPE,
  BUNDLE_V02_MEDIA_TYPE,
  BUNDLE_V03_LEGACY_MEDIA_TYPE,
  BUNDLE_V03_MEDIA_TYPE,
  bundleFromJSON,
  ValidationError,
  type Bundle,
  type TransparencyLogEntry,
} from '@sigstore/bundle';
import { crypto as sigstoreCrypto, pem, X509Certificate } from '@sigstore/core';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
import { toSignedEntity, VerificationError, Verifier, type SignedEntity } from '@sigstore/verify';
import { StepError } from '../errors.js';
import { VERIFY_CODES, verifyError } from './codes.js';
import { hashFileStreaming, parseSha256, unreadable, type FileHashes, type HashName } from './digest.js';
import { trustMaterialOf } from './trusted-root.js';

/** The artifact a bundle is checked against: a file (hashed by streaming) or its sha256 digest. */
export type ArtifactInput = { file: string } | { sha256: string };

/** Who must have signed: the certificate's SAN, exactly or matching a whole regular expression. */
export type IdentityMatcher = { exact: string } | { regexp: string };

export interface VerifyBundleOptions {
  /** Path of the `.sigstore.json` bundle. */
  bundle: string;
  artifact: ArtifactInput;
  identity: IdentityMatcher;
  /** The OIDC issuer of the signing identity, compared exactly. */
  issuer: string;
  /** The trusted_root.json object (see loadTrustedRoot). */
  trustedRoot: object;
}

/** An in-toto statement, as carried by a DSSE bundle. */
export interface InTotoStatement {
  _type: string;
  subject: Array<{ name?: string; digest: Record<string, string> }>;
  predicateType: string;
  predicate?: unknown;
}

export interface BundleVerification {
  verified: true;
  kind: 'message' | 'dsse';
  mediaType: string;
  /** The certificate's subject alternative name: who signed. */
  san: string;
  issuer: string;
  logIndex: number;
  /** When Rekor logged the entry (ISO 8601), when the entry carries that time. */
  integratedTime?: string;
  /** The GitHub workflow run that signed (Fulcio's run invocation URI), when the certificate names one. */
  run?: string;
  /** The source commit the signing workflow ran on (Fulcio's source repository digest). */
  commit?: string;
  /** The in-toto statement of a DSSE bundle (verified). */
  statement?: InTotoStatement;
}

/** Fulcio certificate extensions the release checks read. */
export const FULCIO_OID = {
  runInvocationUri: '1.3.6.1.4.1.57264.1.21',
  sourceRepositoryDigest: '1.3.6.1.4.1.57264.1.13',
  sourceRepositoryUri: '1.3.6.1.4.1.57264.1.12',
  sourceRepositoryRef: '1.3.6.1.4.1.57264.1.14',
} as const;

export const KNOWN_BUNDLE_MEDIA_TYPES: readonly string[] = [BUNDLE_V01_MEDIA_TYPE, BUNDLE_V02_MEDIA_TYPE, BUNDLE_V03_LEGACY_MEDIA_TYPE, BUNDLE_V03_MEDIA_TYPE];

const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

const HASH_NAMES: Partial<Record<HashAlgorithm, HashName>> = {
  [HashAlgorithm.HASH_ALGORITHM_UNSPECIFIED]: 'sha256',
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_384]: 'sha384',
  [HashAlgorithm.SHA2_512]: 'sha512',
};

/** What the artifact is known as inside the verifier: a file to hash, or digests already made. */
export type ArtifactDigests = { file: string; hashes?: FileHashes } | { hashes: Partial<Record<HashName, string>> };

/** Everything one bundle check needs; the release check builds it once per file. */
export interface BundleCheck {
  /** How the bundle is named in messages (its path). */
  where: string;
  /** The bundle's text. */
  text: string;
  /** Absent for statement bundles checked on their own (the release's provenance). */
  artifact?: ArtifactDigests;
  identity: IdentityMatcher;
  issuer: string;
  trustedRoot: object;
  /** The time a certificate is judged against when the bundle carries no verified time. */
  now?: Date;
}

/**
 * Checks one Sigstore bundle the way `cosign verify-blob --bundle` does: the certificate chains to
 * the trusted root at the logged or timestamped time, the transparency-log entry is included
 * (proof, checkpoint, promise) and describes this bundle, timestamps verify, the signature is over
 * the artifact, and the identity and issuer are the expected ones. The artifact is streamed, never
 * read whole.
 */
export async function verifyBundle(options: VerifyBundleOptions): Promise<BundleVerification> {
  const text = await readBundleText(options.bundle);
  const artifact: ArtifactDigests = 'file' in options.artifact ? { file: options.artifact.file } : { hashes: { sha256: parseSha256(options.artifact.sha256) } };
  return checkBundle({ where: options.bundle, text, artifact, identity: options.identity, issuer: options.issuer, trustedRoot: options.trustedRoot });
}

/** `sha256:<hex>` is a digest, anything else a file path: the CLI's artifact argument. */
export function parseArtifact(value: string): ArtifactInput {
  return /^sha256:/i.test(value.trim()) ? { sha256: parseSha256(value) } : { file: value };
}

export async function readBundleText(file: string): Promise<string> {
  const tooBig = (size: string): StepError => verifyError(VERIFY_CODES.bundleMalformed, `${file} is ${size}: far too big for a Sigstore bundle`, 'point at the .sigstore.json bundle, not at the artifact');
  try {
    const info = await stat(file);
    if (info.isFile() && info.size > MAX_BUNDLE_BYTES) throw tooBig(`${info.size} bytes`);
    // read with the same bound: a pipe or a device (--bundle /dev/zero) has no size to check first
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BUNDLE_BYTES) throw tooBig(`more than ${MAX_BUNDLE_BYTES} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw unreadable(file, 'bundle', err);
  }
}

/** Compiles an identity matcher; a regular expression always has to match the whole SAN. */
export function identityTest(identity: IdentityMatcher): { test(san: string): boolean; describe: string } {
  if ('exact' in identity) return { test: (san) => san === identity.exact, describe: identity.exact };
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${identity.regexp})$`);
  } catch (err) {
    throw verifyError(VERIFY_CODES.options, `the identity pattern ${JSON.stringify(identity.regexp)} is not a valid regular expression: ${(err as Error).message}`, 'fix the pattern (it is matched against the whole SAN)', { cause: err });
  }
  return { test: (san) => re.test(san), describe: `a match of ^(?:${identity.regexp})$` };
}

export async function checkBundle(check: BundleCheck): Promise<BundleVerification> {
  const { where } = check;
  const matcher = identityTest(check.identity);
  const bundle = parseBundle(check.text, where);
  const leaf = leafCertificate(bundle, where);
  const trust = trustMaterialOf(check.trustedRoot);

  let entity: SignedEntity;
  try {
    entity = toSignedEntity(bundle);
  } catch (err) {
    throw verifyError(VERIFY_CODES.bundleMalformed, `${where} is not a valid Sigstore bundle: ${(err as Error).message}`, 'the bundle is damaged; download it again or re-sign the file', { cause: err });
  }

  let artifactHashes: Partial<Record<HashName, string>> | undefined;
  if (bundle.content.$case === 'messageSignature') {
    const { messageDigest, signature } = bundle.content.messageSignature;
    const algorithm = HASH_NAMES[messageDigest.algorithm];
    if (!algorithm) throw verifyError(VERIFY_CODES.bundleMalformed, `${where} signs a digest made with an algorithm this verifier does not know (${HashAlgorithm[messageDigest.algorithm] ?? messageDigest.algorithm})`, 'sign the file again with a SHA-2 digest');
    if (!check.artifact) throw verifyError(VERIFY_CODES.options, `${where} signs a file, and no file or digest was given to check it against`, 'give the artifact (a file, or sha256:<hex>)');
    artifactHashes = await digestsOf(check.artifact, [algorithm]);
    const actual = artifactHashes[algorithm];
    if (!actual) {
      throw verifyError(VERIFY_CODES.options, `${where} signs a ${algorithm} digest, and only a ${Object.keys(artifactHashes).join('/')} digest of the artifact was given`, 'give the artifact as a file instead of a digest');
    }
    const signed = Buffer.from(messageDigest.digest).toString('hex');
    if (actual !== signed) {
      throw verifyError(VERIFY_CODES.digestMismatch, `${where} signs ${algorithm}:${signed}, but the artifact${'file' in check.artifact ? ` ${check.artifact.file}` : ''} has ${algorithm}:${actual}`, 'the file was changed after signing, or this bundle belongs to another file: download both again from the release');
    }
    entity = { ...entity, signature: new DigestSignatureContent(Buffer.from(signature), Buffer.from(actual, 'hex')) };
  } else if (check.artifact) {
    artifactHashes = await digestsOf(check.artifact, ['sha256', 'sha512']);
  }

  checkTlogEntries(bundle, leaf, where);
  requireVerifiedTime(entity, leaf, where, check.now ?? new Date());

  let signer: ReturnType<Verifier['verify']>;
  try {
    signer = new Verifier(trust).verify(entity);
  } catch (err) {
    throw explain(err, where, leaf, entity);
  }

  const san = signer.identity?.subjectAlternativeName ?? '';
  const issuer = signer.identity?.extensions?.issuer ?? '';
  if (!matcher.test(san)) {
    throw verifyError(VERIFY_CODES.identityMismatch, `${where} was signed by ${san || 'an identity without a SAN'}, expected ${matcher.describe}`, 'a file signed by another workflow, repository or ref is not this release: check the identity you expect, and where the file came from');
  }
  if (issuer !== check.issuer) {
    throw verifyError(VERIFY_CODES.issuerMismatch, `${where} was signed with an identity from issuer ${issuer || '(none)'}, expected ${check.issuer}`, 'releases are signed with GitHub Actions identities (https://token.actions.githubusercontent.com); check the expected issuer');
  }

  const entry = bundle.verificationMaterial.tlogEntries[0] as TransparencyLogEntry;
  const integrated = Number(entry.integratedTime ?? 0);
  const run = extensionText(leaf, FULCIO_OID.runInvocationUri);
  const commit = extensionText(leaf, FULCIO_OID.sourceRepositoryDigest);
  const result: BundleVerification = {
    verified: true,
    kind: bundle.content.$case === 'messageSignature' ? 'message' : 'dsse',
    mediaType: bundle.mediaType,
    san,
    issuer,
    logIndex: Number(entry.logIndex),
    ...(integrated > 0 ? { integratedTime: new Date(integrated * 1000).toISOString() } : {}),
    ...(run ? { run } : {}),
    ...(commit ? { commit } : {}),
  };
  if (bundle.content.$case === 'dsseEnvelope') {
    const statement = parseStatement(bundle.content.dsseEnvelope.payloadType, Buffer.from(bundle.content.dsseEnvelope.payload), where);
    if (artifactHashes) requireSubject(statement, artifactHashes, where, check.artifact);
    result.statement = statement;
  }
  return result;
}

function parseBundle(text: string, where: string): Bundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw verifyError(VERIFY_CODES.bundleMalformed, `${where} is not JSON: ${(err as Error).message}`, 'the bundle is damaged or is not a Sigstore bundle; download it again from the release', { cause: err });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw verifyError(VERIFY_CODES.bundleMalformed, `${where} is not a Sigstore bundle (JSON, but not an object)`, 'point at the .sigstore.json bundle of the file');
  }
  const mediaType = (json as { mediaType?: unknown }).mediaType;
  if (typeof mediaType !== 'string' || !mediaType) {
    throw verifyError(VERIFY_CODES.bundleMalformed, `${where} has no mediaType: it is not a Sigstore bundle`, 'point at the .sigstore.json bundle of the file');
  }
  if (!KNOWN_BUNDLE_MEDIA_TYPES.includes(mediaType)) {
    throw verifyError(VERIFY_CODES.bundleMediaType, `${where} has media type ${mediaType}, which is not a Sigstore bundle version this verifier knows (v0.1, v0.2, v0.3)`, 'a newer bundle format needs a newer mcp-release; a made-up media type means the bundle was tampered with', {
      details: KNOWN_BUNDLE_MEDIA_TYPES.map((t) => `known: ${t}`),
    });
  }
  try {
    return bundleFromJSON(json);
  } catch (err) {
    const fields = err instanceof ValidationError ? err.fields : [];
    throw verifyError(VERIFY_CODES.bundleMalformed, `${where} is not a valid ${mediaType} bundle${fields.length ? `: ${fields.join(', ')} missing or invalid` : `: ${(err as Error).message}`}`, 'the bundle is damaged or was edited; download it again from the release', { cause: err, details: fields });
  }
}

function leafCertificate(bundle: Bundle, where: string): X509Certificate {
  const material = bundle.verificationMaterial.content;
  let raw: Uint8Array | undefined;
  if (material.$case === 'certificate') raw = material.certificate.rawBytes;
  else if (material.$case === 'x509CertificateChain') raw = material.x509CertificateChain.certificates[0]?.rawBytes;
  else {
    throw verifyError(VERIFY_CODES.bundleNoCertificate, `${where} is signed with a bare public key, not a Fulcio certificate: there is no identity to check`, 'release files are signed keylessly (a certificate for the workflow identity); this bundle is not from the release workflow');
  }
  try {
    return X509Certificate.parse(Buffer.from(raw as Uint8Array));
  } catch (err) {
    throw verifyError(VERIFY_CODES.bundleMalformed, `${where} holds a certificate that cannot be parsed: ${(err as Error).message}`, 'the bundle is damaged; download it again from the release', { cause: err });
  }
}

async function digestsOf(artifact: ArtifactDigests, needed: HashName[]): Promise<Partial<Record<HashName, string>>> {
  if (!('file' in artifact)) return artifact.hashes;
  const have = artifact.hashes;
  if (have && needed.every((n) => have[n])) return have;
  const fresh = await hashFileStreaming(artifact.file, [...needed, 'sha256']);
  return { ...have, ...fresh };
}

/**
 * The signature of a message bundle, checked over the digest the artifact was streamed into: the
 * verifier compares the digest and signature with the log entry through this, and checks the ECDSA
 * signature over the digest itself (no second pass over the file).
 */
class DigestSignatureContent {
  constructor(
    readonly signature: Buffer,
    private readonly digest: Buffer,
  ) {}

  compareSignature(signature: Buffer): boolean {
    return sigstoreCrypto.bufferEqual(signature, this.signature);
  }

  compareDigest(digest: Buffer): boolean {
    return sigstoreCrypto.bufferEqual(digest, this.digest);
  }

  verifySignature(key: KeyObject): boolean {
    return verifyDigestSignature(key, this.signature, this.digest);
  }
}

const CURVES: Record<string, typeof p256> = { prime256v1: p256, secp384r1: p384, secp521r1: p521 };

/** ECDSA verification over a digest (the artifact was hashed while streaming). */
export function verifyDigestSignature(key: KeyObject, signature: Uint8Array, digest: Uint8Array): boolean {
  const curve = key.asymmetricKeyType === 'ec' ? CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
  if (!curve) {
    throw verifyError(VERIFY_CODES.keyUnsupported, `the signing key is ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` (${key.asymmetricKeyDetails.namedCurve})` : ''}; files are checked with ECDSA P-256, P-384 or P-521 keys only`, 'Fulcio certificates for release signing carry ECDSA keys; this bundle was not made by the release workflow');
  }
  const jwk = key.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  try {
    return curve.verify(signature, digest, point, { prehash: false, format: 'der', lowS: false });
  } catch {
    return false;
  }
}

/** Reads a Fulcio extension that holds a string (DER UTF8String, or the raw string of the older ones). */
export function extensionText(cert: X509Certificate, oid: string): string | undefined {
  const ext = cert.extension(oid);
  if (!ext) return undefined;
  const inner = ext.valueObj.subs[0];
  return (inner ? inner.value : ext.value).toString('utf8');
}

function pemToDer(text: string): Buffer | undefined {
  try {
    return pem.toDER(text);
  } catch {
    return undefined;
  }
}

const b64 = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : '', 'base64');

/**
 * The log entry must describe this bundle: the same kind of content, signature, digest and
 * certificate; and its inclusion proof must state the root and size of its checkpoint. Checked
 * before the log proofs so that an edited entry is named as such.
 */
function checkTlogEntries(bundle: Bundle, leaf: X509Certificate, where: string): void {
  const content = bundle.content;
  const sig = Buffer.from(content.$case === 'messageSignature' ? content.messageSignature.signature : (content.dsseEnvelope.signatures[0]?.sig ?? Buffer.alloc(0)));
  for (const [i, entry] of bundle.verificationMaterial.tlogEntries.entries()) {
    const label = `${where}: the Rekor entry ${entry.logIndex}${bundle.verificationMaterial.tlogEntries.length > 1 ? ` (#${i + 1})` : ''}`;
    const differs = (what: string): StepError =>
      verifyError(VERIFY_CODES.tlogBodyMismatch, `${label} ${what}`, 'the bundle or its log entry was edited: the log entry must describe exactly this signature; download the bundle again, and distrust the file if it persists');
    for (const [field, value] of [['logIndex', entry.logIndex], ['integratedTime', entry.integratedTime]] as const) {
      // the times and indexes below are read as numbers: text that is not one is a damaged entry, not a time
      if (value !== undefined && !/^\d{1,16}$/.test(String(value))) {
        throw verifyError(VERIFY_CODES.bundleMalformed, `${label} has ${field} ${JSON.stringify(value)}, which is not a whole number`, 'the bundle is damaged or was edited; download it again from the release');
      }
    }
    let body: { kind?: string; apiVersion?: string; spec?: Record<string, unknown> };
    try {
      body = JSON.parse(Buffer.from(entry.canonicalizedBody).toString('utf8')) as typeof body;
    } catch {
      throw differs('has a body that is not JSON');
    }
    const kindVersion = entry.kindVersion ?? { kind: '', version: '' };
    if (body.kind !== kindVersion.kind || body.apiVersion !== kindVersion.version) {
      throw differs(`says ${kindVersion.kind}/${kindVersion.version} but its body is ${body.kind}/${body.apiVersion}`);
    }
    const proof = entry.inclusionProof;
    if (proof?.checkpoint?.envelope) {
      // the proof's own root and size must be the ones its signed checkpoint states
      const [, size, root] = (proof.checkpoint.envelope.split('\n\n')[0] ?? '').split('\n');
      const proofRoot = Buffer.from(proof.rootHash).toString('base64');
      if (size !== String(proof.treeSize) || root !== proofRoot) {
        throw verifyError(VERIFY_CODES.tlogInclusionInvalid, `${label}: the inclusion proof names tree size ${proof.treeSize} and root ${proofRoot}, but its checkpoint states size ${size} and root ${root}`, 'the log proof was edited; download the bundle again, and distrust the file if it persists');
      }
    }
    const spec = (body.spec ?? {}) as Record<string, Record<string, unknown> | undefined>;
    const sameCert = (pemB64: unknown): boolean => {
      const der = pemToDer(b64(pemB64).toString('utf8'));
      return Boolean(der && sigstoreCrypto.bufferEqual(der, leaf.root.toDER()));
    };
    if (content.$case === 'messageSignature') {
      if (body.kind !== 'hashedrekord') throw differs(`is a ${body.kind} entry, but the bundle holds a message signature (hashedrekord)`);
      if (body.apiVersion !== '0.0.1') continue; // other versions: the verifier's own comparison
      const hash = (spec.data?.hash ?? {}) as { algorithm?: string; value?: string };
      const signed = Buffer.from(content.messageSignature.messageDigest.digest).toString('hex');
      if (hash.value !== signed) throw differs(`logs digest ${hash.algorithm}:${hash.value}, but the bundle signs ${signed}`);
      const signature = (spec.signature ?? {}) as { content?: string; publicKey?: { content?: string } };
      if (!sigstoreCrypto.bufferEqual(b64(signature.content), sig)) throw differs('logs a different signature than the bundle holds');
      if (!sameCert(signature.publicKey?.content)) throw differs('logs a different signing certificate than the bundle holds');
    } else {
      const payloadHash = createHash('sha256').update(content.dsseEnvelope.payload).digest('hex');
      if (body.kind === 'dsse' && body.apiVersion === '0.0.1') {
        const signatures = (spec.signatures ?? []) as unknown as Array<{ signature?: string; verifier?: string }>;
        const hash = (spec.payloadHash ?? {}) as { value?: string };
        if (signatures.length !== 1) throw differs(`logs ${signatures.length} signatures, the bundle holds one`);
        if (hash.value !== payloadHash) throw differs(`logs payload hash ${hash.value}, but the bundle's statement hashes to ${payloadHash}`);
        if (!sigstoreCrypto.bufferEqual(b64(signatures[0]?.signature), sig)) throw differs('logs a different signature than the bundle holds');
        if (!sameCert(signatures[0]?.verifier)) throw differs('logs a different signing certificate than the bundle holds');
      } else if (body.kind === 'intoto' && body.apiVersion === '0.0.2') {
        const inner = (spec.content ?? {}) as { payloadHash?: { value?: string } };
        if (inner.payloadHash?.value !== payloadHash) throw differs(`logs payload hash ${inner.payloadHash?.value}, but the bundle's statement hashes to ${payloadHash}`);
      } else if (body.kind !== 'dsse' && body.kind !== 'intoto') {
        throw differs(`is a ${body.kind} entry, but the bundle holds a DSSE envelope`);
      }
    }
  }
}

/**
 * A certificate is only checked at a time the bundle proves (log or timestamp authority). Without
 * one, the answer is an expired certificate when it has expired by now, and a missing time when not.
 */
function requireVerifiedTime(entity: SignedEntity, leaf: X509Certificate, where: string, now: Date): void {
  if (entity.timestamps.length > 0) return;
  if (leaf.notAfter.getTime() < now.getTime()) {
    throw verifyError(
      VERIFY_CODES.certificateExpired,
      `${where}: the signing certificate expired at ${leaf.notAfter.toISOString()}, and the bundle has no transparency-log entry or signed timestamp proving the signature was made while it was valid`,
      'a keyless signature is only valid with the log entry (and timestamp) recorded at signing; use the original bundle from the release, not one stripped of them',
    );
  }
  throw verifyError(VERIFY_CODES.timestampMissing, `${where} carries no verified time: no transparency-log entry with an integrated time and no signed timestamp`, 'use the original bundle from the release; a bundle without its log entry cannot be checked');
}

function signingTimes(entity: SignedEntity): Date[] {
  return entity.timestamps.map((t) => (t.$case === 'transparency-log' ? new Date(Number(t.tlogEntry.integratedTime) * 1000) : t.timestamp.signingTime));
}

/** Turns a verifier failure into the error a person can act on. */
function explain(err: unknown, where: string, leaf: X509Certificate, entity: SignedEntity): Error {
  if (err instanceof StepError) return err;
  if (!(err instanceof VerificationError)) {
    return verifyError(VERIFY_CODES.failed, `${where} could not be verified: ${(err as Error).message}`, 'the bundle is damaged or uses a feature this verifier does not know; download it again', { cause: err });
  }
  const message = err.message;
  switch (err.code) {
    case 'SIGNATURE_ERROR':
      return verifyError(VERIFY_CODES.signatureInvalid, `${where}: the signature does not verify with the certificate's key over the artifact`, 'the bundle was edited, or belongs to another file; download the file and its bundle again from the release', { cause: err });
    case 'CERTIFICATE_ERROR': {
      const outside = signingTimes(entity).filter((t) => !leaf.validForDate(t));
      const validity = `valid ${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()}`;
      if (outside.length) {
        return verifyError(VERIFY_CODES.certificateUntrusted, `${where}: the signing certificate (${validity}) was not valid at the signing time the bundle proves (${outside.map((t) => t.toISOString()).join(', ')})`, 'the signature was logged outside the certificate\'s life: the bundle is not genuine', { cause: err });
      }
      if (/SCT/.test(message)) {
        return verifyError(VERIFY_CODES.certificateUntrusted, `${where}: the signing certificate's transparency proof (SCT) does not verify against the trusted root's CT logs (${message})`, 'the certificate was not issued by the Fulcio of this trusted root; check --trusted-root', { cause: err });
      }
      return verifyError(VERIFY_CODES.certificateUntrusted, `${where}: the signing certificate does not chain to a Fulcio certificate authority of the trusted root at the signing time (${message})`, 'the file was signed by another Sigstore instance, or the certificate is forged; check --trusted-root (public Sigstore, or the instance that signed)', { cause: err });
    }
    case 'TIMESTAMP_ERROR':
      return verifyError(VERIFY_CODES.timestampInvalid, `${where}: a signed timestamp in the bundle does not verify against the trusted root's timestamp authorities (${message})`, 'the timestamp was edited or comes from an authority this trusted root does not list; check --trusted-root', { cause: err });
    case 'TLOG_ERROR':
      return verifyError(VERIFY_CODES.tlogMissing, `${where} has no transparency-log entry (${message})`, 'every release signature is logged in Rekor; use the original bundle from the release', { cause: err });
    case 'TLOG_INCLUSION_PROOF_ERROR':
    case 'TLOG_INCLUSION_PROMISE_ERROR':
    case 'TLOG_MISSING_INCLUSION_ERROR': {
      const what = /checkpoint/i.test(message) ? 'the log checkpoint does not verify' : /promise/i.test(message) ? 'the signed entry timestamp (inclusion promise) does not verify' : /root hash|hash count|index/i.test(message) ? 'the inclusion proof does not lead to the logged tree root' : 'inclusion in the log cannot be proven';
      return verifyError(VERIFY_CODES.tlogInclusionInvalid, `${where}: ${what} (${message})`, 'the log entry or its proof was edited, or comes from a log this trusted root does not list; download the bundle again and check --trusted-root', { cause: err });
    }
    case 'TLOG_BODY_ERROR':
      return verifyError(VERIFY_CODES.tlogBodyMismatch, `${where}: the Rekor entry does not describe this bundle (${message})`, 'the bundle or its log entry was edited; download it again', { cause: err });
    default:
      return verifyError(VERIFY_CODES.failed, `${where} did not verify: ${message} (${err.code})`, 'download the bundle again; if it persists, do not trust the file', { cause: err });
  }
}

function parseStatement(payloadType: string, payload: Buffer, where: string): InTotoStatement {
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw verifyError(VERIFY_CODES.statementInvalid, `${where} signs a ${payloadType || 'typeless'} payload, not an in-toto statement`, 'statement bundles of a release carry in-toto statements (application/vnd.in-toto+json)');
  }
  let statement: InTotoStatement;
  try {
    statement = JSON.parse(payload.toString('utf8')) as InTotoStatement;
  } catch (err) {
    throw verifyError(VERIFY_CODES.statementInvalid, `${where} signs a statement that is not JSON`, 'the statement bundle is damaged; download it again', { cause: err });
  }
  if (!statement || typeof statement !== 'object' || !Array.isArray(statement.subject) || typeof statement.predicateType !== 'string' || !statement.subject.every((s) => s && typeof s === 'object' && s.digest && typeof s.digest === 'object')) {
    throw verifyError(VERIFY_CODES.statementInvalid, `${where} signs a statement without the in-toto fields (subject list with digests, predicateType)`, 'the statement was not made by the release workflow');
  }
  return statement;
}

function requireSubject(statement: InTotoStatement, hashes: Partial<Record<HashName, string>>, where: string, artifact: ArtifactDigests | undefined): void {
  const found = statement.subject.some((s) => (Object.keys(hashes) as HashName[]).some((alg) => hashes[alg] && s.digest[alg]?.toLowerCase() === hashes[alg]));
  if (!found) {
    const what = artifact && 'file' in artifact ? artifact.file : `sha256:${hashes.sha256}`;
    throw verifyError(VERIFY_CODES.subjectNotInStatement, `${what} is not a subject of the statement in ${where} (subjects: ${statement.subject.map((s) => s.name ?? '?').join(', ') || 'none'})`, 'the statement does not speak for this file: it was changed after the statement was signed, or belongs to another release', {
      details: statement.subject.map((s) => `${s.name ?? '?'} ${Object.entries(s.digest).map(([k, v]) => `${k}:${v}`).join(' ')}`),
    });
  }
}
