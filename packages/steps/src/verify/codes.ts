import { isCodedError } from '@mcp-release/manifest';
import { StepError } from '../errors.js';

/**
 * Error codes of verification. Codes that start with `VERIFY_` mean the evidence was checked and
 * is wrong (not verified, exit 1); codes that start with `CANNOT_VERIFY_` mean the check could not
 * be made (no trusted root, unreadable input, a service down: could not check, exit 3).
 */
export const VERIFY_CODES = {
  // the bundle itself
  bundleMalformed: 'VERIFY_BUNDLE_MALFORMED',
  bundleMediaType: 'VERIFY_BUNDLE_MEDIA_TYPE',
  bundleNoCertificate: 'VERIFY_BUNDLE_NO_CERTIFICATE',
  keyUnsupported: 'VERIFY_KEY_UNSUPPORTED',
  // cryptographic checks
  signatureInvalid: 'VERIFY_SIGNATURE_INVALID',
  certificateUntrusted: 'VERIFY_CERTIFICATE_UNTRUSTED',
  certificateExpired: 'VERIFY_CERTIFICATE_EXPIRED',
  timestampInvalid: 'VERIFY_TIMESTAMP_INVALID',
  timestampMissing: 'VERIFY_TIMESTAMP_MISSING',
  tlogMissing: 'VERIFY_TLOG_MISSING',
  tlogInclusionInvalid: 'VERIFY_TLOG_INCLUSION_INVALID',
  tlogBodyMismatch: 'VERIFY_TLOG_BODY_MISMATCH',
  // policy and content
  identityMismatch: 'VERIFY_IDENTITY_MISMATCH',
  issuerMismatch: 'VERIFY_ISSUER_MISMATCH',
  digestMismatch: 'VERIFY_DIGEST_MISMATCH',
  statementInvalid: 'VERIFY_STATEMENT_INVALID',
  subjectNotInStatement: 'VERIFY_SUBJECT_NOT_IN_STATEMENT',
  failed: 'VERIFY_FAILED',
  // a whole release
  bundleMissing: 'VERIFY_BUNDLE_MISSING',
  bundleOrphan: 'VERIFY_BUNDLE_ORPHAN',
  notAFile: 'VERIFY_NOT_A_FILE',
  checksumsMissing: 'VERIFY_CHECKSUMS_MISSING',
  checksumsMalformed: 'VERIFY_CHECKSUMS_MALFORMED',
  checksumMismatch: 'VERIFY_CHECKSUM_MISMATCH',
  fileMissing: 'VERIFY_FILE_MISSING',
  fileUnlisted: 'VERIFY_FILE_UNLISTED',
  mixedRuns: 'VERIFY_MIXED_RUNS',
  runUnknown: 'VERIFY_RUN_UNKNOWN',
  provenanceMissing: 'VERIFY_PROVENANCE_MISSING',
  provenanceType: 'VERIFY_PROVENANCE_TYPE',
  provenanceSubjectMissing: 'VERIFY_PROVENANCE_SUBJECT_MISSING',
  provenanceSubjectExtra: 'VERIFY_PROVENANCE_SUBJECT_EXTRA',
  provenanceSubjectDigest: 'VERIFY_PROVENANCE_SUBJECT_DIGEST',
  npmProvenanceMismatch: 'VERIFY_NPM_PROVENANCE_MISMATCH',
  registryIntegrityMismatch: 'VERIFY_REGISTRY_INTEGRITY_MISMATCH',
  registryVersionMissing: 'VERIFY_REGISTRY_VERSION_MISSING',
  sbomMismatch: 'VERIFY_SBOM_MISMATCH',
  // could not check
  trustedRootUnavailable: 'CANNOT_VERIFY_TRUSTED_ROOT',
  trustedRootInvalid: 'CANNOT_VERIFY_TRUSTED_ROOT_INVALID',
  inputUnreadable: 'CANNOT_VERIFY_INPUT',
  options: 'CANNOT_VERIFY_OPTIONS',
  download: 'CANNOT_VERIFY_DOWNLOAD',
  registry: 'CANNOT_VERIFY_REGISTRY',
} as const;
export type VerifyCode = (typeof VERIFY_CODES)[keyof typeof VERIFY_CODES];

export const COULD_NOT_CHECK_PREFIX = 'CANNOT_VERIFY_';

/** Exit codes of `verify`: 0 verified, 1 not verified, 3 could not check. */
export type VerifyExitCode = 0 | 1 | 3;

/** True when an error means the check could not be made (as opposed to: the evidence is wrong). */
export function couldNotCheck(err: unknown): boolean {
  return !(isCodedError(err) && err.code.startsWith('VERIFY_'));
}

/**
 * The exit code for a verification outcome: a result (`verified: true`, or a release result with
 * its overall status) or a thrown error. Errors that are not verification failures (a bug, an
 * unreadable file, a service down) are "could not check".
 */
export function verifyExitCode(outcome: unknown): VerifyExitCode {
  if (outcome && typeof outcome === 'object' && !(outcome instanceof Error)) {
    const o = outcome as { verified?: unknown; status?: unknown };
    if (o.verified === true || o.status === 'verified') return 0;
    if (o.status === 'not-verified') return 1;
    return 3;
  }
  return couldNotCheck(outcome) ? 3 : 1;
}

export function verifyError(code: VerifyCode, message: string, hint: string, extra: { cause?: unknown; details?: string[] } = {}): StepError {
  return new StepError(code, message, { hint, ...extra });
}
