/** The release manifest, schema version 1 (policies/schemas/manifest.schema.json). */
export const MANIFEST_SCHEMA_VERSION = 1;

export const ARTIFACT_KINDS = [
  'npm-tarball',
  'native-library',
  'native-cli',
  'models-archive',
  'checksums',
  'sbom-spdx',
  'sbom-cyclonedx',
  'sigstore-bundle',
  'provenance',
  'gate-report',
  'verify-script',
] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

export interface PlannedPackage {
  name: string;
  version: string;
  /** Workspace folder, relative to the repository root. */
  path: string;
  tag?: string;
  /** npm dist-tag, frozen at plan: `next` (or the policy's) for prereleases, `latest` otherwise. */
  distTag?: string;
}

export interface Plan {
  commit: string;
  dirty: boolean;
  /** The release time, read once when the plan is frozen (UTC, whole seconds). */
  timestamp: string;
  epoch: number;
  timestampSource?: 'clock' | 'source-date-epoch' | 'commit' | 'explicit';
  tag: string;
  packages: PlannedPackage[];
  /** The default branch the commit was proven to be on (an ancestor of its head) at plan time. */
  branch?: { name: string; remote: string; head: string };
}

export interface Artifact {
  /** Path relative to the release folder; also the release asset name. */
  path: string;
  kind: ArtifactKind;
  /** `any` or `<os>-<arch>`, e.g. `linux-x64`. */
  platform: string;
  size: number;
  sha256: string;
  sha512: string;
  producedBy: string;
  meta?: Record<string, unknown>;
}

export type StepState = 'running' | 'succeeded' | 'skipped' | 'failed';

export interface StepRecord {
  state: StepState;
  /** Digest of the step's inputs; with matching outputs it lets a re-run skip finished work. */
  fingerprint?: string;
  outputs?: string[];
  reason?: string;
  error?: { code: string; message: string; hint?: string };
  data?: Record<string, unknown>;
}

export interface NativeBuild {
  project: { name: string; version: string };
  source: { path?: string; commit: string | null; fingerprint: string };
  buildtype: string;
  /** Effective project options as meson reports them (meson introspect --buildoptions). */
  options: Record<string, unknown>;
  requestedOptions?: Record<string, string>;
  compilers?: Array<{ language: string; id: string; version: string }>;
  mesonVersion?: string;
  targets?: Record<string, unknown>;
}

export interface Manifest {
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  plan: Plan;
  artifacts: Artifact[];
  steps: Record<string, StepRecord>;
  native?: Record<string, NativeBuild>;
}
