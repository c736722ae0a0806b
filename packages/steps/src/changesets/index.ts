export { changesetsBaseBranch, changesetsBaseRef, checkChangesets, renderChangesetSummary, requireChangesets } from './check.js';
export type { ChangesetCheck, ChangesetCheckInput, PackageChanges } from './check.js';
export { findChangesetBin, versionPackages } from './version.js';
export type { VersionBump, VersionInput, VersionResult } from './version.js';
export { BUMP_TYPES, CHANGESET_DIR, isChangesetFile, parseChangeset, readChangesets, workspaceAt } from './repo.js';
export type { BumpType, Changeset, ChangesetProblem, WorkspacePackage } from './repo.js';
