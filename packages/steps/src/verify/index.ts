export * from './codes.js';
export { hashFileStreaming, parseSha256, type FileHashes, type HashName } from './digest.js';
export { loadTrustedRoot, trustMaterialOf, TRUSTED_ROOT_ENV, type LoadTrustedRootOptions, type LoadedTrustedRoot } from './trusted-root.js';
export {
  verifyBundle,
  parseArtifact,
  identityTest,
  extensionText,
  verifyDigestSignature,
  FULCIO_OID,
  KNOWN_BUNDLE_MEDIA_TYPES,
  type ArtifactInput,
  type IdentityMatcher,
  type VerifyBundleOptions,
  type BundleVerification,
  type InTotoStatement,
} from './bundle.js';
export { downloadRelease, splitRepository, type DownloadReleaseOptions, type DownloadedRelease } from './github.js';
export {
  verifyRelease,
  renderReleaseVerification,
  releaseIdentity,
  overallStatus,
  parseNpmPurl,
  RELEASE_LAYOUT,
  type ReleaseIdentityPolicy,
  type GithubReleaseSource,
  type VerifyReleaseOptions,
  type CheckStatus,
  type ReleaseStatus,
  type ReleaseCheck,
  type ReleaseVerification,
} from './release.js';
