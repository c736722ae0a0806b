export {
  createGithubReleaseClient,
  githubReleaseClientFromEnv,
  releaseRepository,
  isTransient,
  type GithubClientOptions,
  type GithubReleaseClient,
  type ReleaseProgress,
  type GithubRetryPolicy,
} from './client.js';
export { fetchTrusting, extraCaNotLoaded } from './fetch.js';
export { isPrerelease, releaseNotes, releaseTitle, releaseVersion } from './notes.js';
export {
  assetNameProblem,
  assetSha256,
  compareAssets,
  contentTypeOf,
  downloadDraft,
  ensureDraft,
  findReleases,
  listAssets,
  tagCommit,
  undraft,
  uploadAssets,
  type DownloadedDraft,
  type EnsureDraftInput,
  type EnsureDraftResult,
  type ExpectedAsset,
  type GithubRelease,
  type ReleaseAsset,
  type ReleaseFile,
  type UndraftInput,
  type UndraftResult,
  type UploadOptions,
  type UploadResult,
} from './release.js';
export { draftFolder, expectedAssets, releaseDraftStep, undraftStep, verifyDraftStep, verifyPublishedStep } from './steps.js';
