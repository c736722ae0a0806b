import { canonicalJson, compareNames, type Artifact, type Manifest, type NativeBuild, type PlannedPackage } from '@mcp-release/manifest';
import { StepError } from '../errors.js';
import type { JobClaims } from './claims.js';

export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** The build type GitHub's own artifact attestations use for a workflow run. */
export const GITHUB_WORKFLOW_BUILD_TYPE = 'https://actions.github.io/buildtypes/workflow/v1';
/** The key under `internalParameters` that holds what this toolkit resolved for the build. */
export const TOOLKIT_PARAMETERS_KEY = 'mcpRelease';

/** Provenance over every release file (sha256 subjects), the form `cosign verify-blob-attestation` checks. */
export const PROVENANCE_FILE = 'provenance.intoto.sigstore.json';
/** Provenance over the npm tarballs as npm names them (`pkg:npm/…` subjects with sha512 digests). */
export const NPM_PROVENANCE_FILE = 'npm-provenance.sigstore.json';

export interface Subject {
  name: string;
  digest: Record<string, string>;
}

export interface ToolkitParameters {
  plan: { commit: string; tag: string; timestamp: string; packages: PlannedPackage[] };
  /** The native builds as recorded by build-native, keyed by platform (empty without native artifacts). */
  native: Record<string, NativeBuild>;
}

export interface SlsaPredicate {
  buildDefinition: {
    buildType: string;
    externalParameters: { workflow: { ref: string; repository: string; path: string } };
    internalParameters: {
      github: { event_name?: string; repository_id?: string; repository_owner_id?: string; runner_environment?: string };
      [TOOLKIT_PARAMETERS_KEY]: ToolkitParameters;
    };
    resolvedDependencies: Array<{ uri: string; digest: { gitCommit: string } }>;
  };
  runDetails: {
    builder: { id: string };
    metadata: { invocationId: string };
  };
}

export interface Statement {
  _type: typeof IN_TOTO_STATEMENT_V1;
  subject: Subject[];
  predicateType: typeof SLSA_PROVENANCE_V1;
  predicate: SlsaPredicate;
}

export interface BuildOptions {
  /** The GitHub server the job runs on; `https://github.com` unless GITHUB_SERVER_URL says otherwise. */
  serverUrl?: string;
  /**
   * A rehearsal may attest a plan frozen from a work tree with uncommitted changes; the predicate
   * then says so (`mcpRelease.plan.dirty: true`). A real release never does.
   */
  allowDirty?: boolean;
}

/** A deep copy with every object's keys in code-point order: the same content gives the same bytes. */
export function canonical<T>(value: T): T {
  return JSON.parse(canonicalJson(value)) as T;
}

/** The release files a provenance statement covers: everything but Sigstore bundles and provenance itself, sorted by path. */
export function attestedArtifacts(manifest: Manifest): Artifact[] {
  return manifest.artifacts
    .filter((a) => a.kind !== 'sigstore-bundle' && a.kind !== 'provenance' && !a.path.endsWith('.sigstore.json'))
    .sort((a, b) => compareNames(a.path, b.path));
}

export function releaseSubjects(manifest: Manifest): Subject[] {
  return attestedArtifacts(manifest).map((a) => ({ name: a.path, digest: { sha256: a.sha256 } }));
}

/** npm's package URL for a version: the scope's `@` is percent-encoded, the slash is kept (`pkg:npm/%40scope/name@1.0.0`). */
export function npmPurl(name: string, version: string): string {
  if (!/^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9._~-][a-z0-9._~-]*$/i.test(name) || name.length > 214) {
    throw new StepError('NPM_NAME_INVALID', `${JSON.stringify(name)} is not a valid npm package name`, {
      hint: 'fix the "name" in the package.json and plan again',
    });
  }
  if (!/^[0-9A-Za-z.+-]+$/.test(version)) {
    throw new StepError('NPM_VERSION_INVALID', `${JSON.stringify(version)} (${name}) is not a valid npm version`, {
      hint: 'fix the "version" in the package.json and plan again',
    });
  }
  return `pkg:npm/${name.replace(/^@/, '%40')}@${version}`;
}

/** The npm tarballs as npm's provenance names them, sorted by package URL. */
export function npmSubjects(manifest: Manifest): Subject[] {
  const seen = new Map<string, string>();
  const out: Subject[] = [];
  for (const a of manifest.artifacts.filter((x) => x.kind === 'npm-tarball')) {
    const name = a.meta?.name;
    const version = a.meta?.version;
    if (typeof name !== 'string' || typeof version !== 'string') {
      throw new StepError('NPM_TARBALL_UNNAMED', `the manifest does not say which package ${a.path} is (meta.name and meta.version are missing)`, {
        hint: 're-run build-npm: it records the package name and version of every tarball it packs',
      });
    }
    const purl = npmPurl(name, version);
    const other = seen.get(purl);
    if (other !== undefined) {
      throw new StepError('NPM_TARBALL_DUPLICATE', `${other} and ${a.path} are both ${name}@${version}`, {
        hint: 'a release publishes each package version once; remove the stray tarball and re-run build-npm',
      });
    }
    seen.set(purl, a.path);
    out.push({ name: purl, digest: { sha512: a.sha512 } });
  }
  return out.sort((x, y) => compareNames(x.name, y.name));
}

/**
 * Refuses to describe a build whose source is not the planned commit: the job's token names the
 * commit the workflow checked out, and the plan names the commit the release was frozen from.
 */
export function assertPlannedCommit(manifest: Manifest, claims: Pick<JobClaims, 'sha' | 'repository'>, allowDirty = false): void {
  const plan = manifest.plan;
  if (plan.dirty && !allowDirty) {
    throw new StepError('PROVENANCE_DIRTY_SOURCE', `the plan was frozen from a working tree with uncommitted changes on top of ${plan.commit.slice(0, 12)}: provenance would name a commit the files were not built from`, {
      hint: 'commit the changes (or discard them), then plan and build again from the clean commit',
    });
  }
  if (claims.sha.toLowerCase() !== plan.commit.toLowerCase()) {
    throw new StepError(
      'PROVENANCE_COMMIT_MISMATCH',
      `the job runs at commit ${claims.sha} of ${claims.repository} but the plan froze commit ${plan.commit}: the release would attest another commit than the one its files were built from`,
      {
        hint: `run the release workflow on the planned commit (check out ${plan.commit.slice(0, 12)}, e.g. by triggering it from tag ${plan.tag}), or plan again on the commit the workflow runs`,
      },
    );
  }
}

/** `owner/repo/.github/workflows/release.yml@refs/tags/v1` → path `.github/workflows/release.yml`, ref `refs/tags/v1`. */
export function splitWorkflowRef(workflowRef: string, repository: string): { path: string; ref: string } {
  const rest = workflowRef.startsWith(`${repository}/`) ? workflowRef.slice(repository.length + 1) : workflowRef;
  const at = rest.indexOf('@');
  return at < 0 ? { path: rest, ref: '' } : { path: rest.slice(0, at), ref: rest.slice(at + 1) };
}

/**
 * The SLSA v1 predicate in the layout of GitHub's workflow build type (the one GitHub's artifact
 * attestations use), with what this toolkit resolved for the build under
 * internalParameters.mcpRelease: the frozen plan and the native build options.
 */
export function buildPredicate(manifest: Manifest, claims: JobClaims, options: BuildOptions = {}): SlsaPredicate {
  assertPlannedCommit(manifest, claims, options.allowDirty);
  const server = (options.serverUrl ?? 'https://github.com').replace(/\/+$/, '');
  const workflow = splitWorkflowRef(claims.workflow_ref, claims.repository);
  const plan = manifest.plan;
  const predicate: SlsaPredicate = {
    buildDefinition: {
      buildType: GITHUB_WORKFLOW_BUILD_TYPE,
      externalParameters: {
        workflow: { ref: workflow.ref, repository: `${server}/${claims.repository}`, path: workflow.path },
      },
      internalParameters: {
        github: {
          ...(claims.event_name !== undefined ? { event_name: claims.event_name } : {}),
          ...(claims.repository_id !== undefined ? { repository_id: claims.repository_id } : {}),
          ...(claims.repository_owner_id !== undefined ? { repository_owner_id: claims.repository_owner_id } : {}),
          ...(claims.runner_environment !== undefined ? { runner_environment: claims.runner_environment } : {}),
        },
        [TOOLKIT_PARAMETERS_KEY]: {
          plan: { commit: plan.commit, tag: plan.tag, timestamp: plan.timestamp, packages: plan.packages, ...(plan.dirty ? { dirty: true } : {}) },
          native: manifest.native ?? {},
        },
      },
      resolvedDependencies: [{ uri: `git+${server}/${claims.repository}@${claims.ref}`, digest: { gitCommit: plan.commit.toLowerCase() } }],
    },
    runDetails: {
      builder: { id: `${server}/${claims.job_workflow_ref}` },
      metadata: { invocationId: `${server}/${claims.repository}/actions/runs/${claims.run_id}/attempts/${claims.run_attempt}` },
    },
  };
  return canonical(predicate);
}

function statementOf(subject: Subject[], predicate: SlsaPredicate): Statement {
  return canonical({ _type: IN_TOTO_STATEMENT_V1, subject, predicateType: SLSA_PROVENANCE_V1, predicate } as Statement);
}

/** In-toto v1 statement, SLSA v1 provenance, one sha256 subject per release file (sorted by name). */
export function buildStatement(manifest: Manifest, claims: JobClaims, options: BuildOptions = {}): Statement {
  return statementOf(releaseSubjects(manifest), buildPredicate(manifest, claims, options));
}

/** The same predicate over the npm tarballs, named as npm names them (`pkg:npm/…`, sha512). */
export function buildNpmStatement(manifest: Manifest, claims: JobClaims, options: BuildOptions = {}): Statement {
  return statementOf(npmSubjects(manifest), buildPredicate(manifest, claims, options));
}

/** The in-toto statement inside a DSSE Sigstore bundle (not verified: use @sigstore/verify for that). */
export function statementFromBundle(bundle: unknown): Statement {
  const envelope = (bundle as { dsseEnvelope?: { payload?: unknown; payloadType?: unknown } } | null)?.dsseEnvelope;
  if (!envelope || typeof envelope.payload !== 'string' || envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new StepError('PROVENANCE_BUNDLE_INVALID', 'the bundle holds no in-toto DSSE envelope', {
      hint: `expected a Sigstore bundle with dsseEnvelope.payloadType ${IN_TOTO_PAYLOAD_TYPE}, as the provenance step writes`,
    });
  }
  try {
    return JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as Statement;
  } catch (err) {
    throw new StepError('PROVENANCE_BUNDLE_INVALID', 'the bundle\'s DSSE payload is not JSON', { hint: 'the bundle is damaged; produce it again with the provenance step', cause: err });
  }
}
