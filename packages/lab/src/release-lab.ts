import type { TrustedPublisher } from './registry/index.js';
import { bootstrapPackage } from './registry/index.js';
import { startLab, type Lab } from './lab.js';

/** The parts of a release policy the lab needs (the lab does not depend on the policy reader). */
export interface LabPolicy {
  release?: { repository?: string; branch?: string };
  signer?: { repository: string; workflow: string; ref: string };
  trustedPublishers?: TrustedPublisher[];
}

export interface ReleaseLabOptions {
  stateDir: string;
  /** The repository being released; the lab's git remote serves `commit` as its default branch. */
  repoRoot: string;
  commit: string;
  policy: LabPolicy;
  immutableReleases?: boolean;
  /** Extra token claims (tests: another workflow, environment, …). */
  claims?: Record<string, unknown>;
  log?: (line: string) => void;
}

/**
 * The lab as a release workflow of this policy sees GitHub: ID tokens for the policy's signer
 * workflow and trusted-publisher environment carrying the planned commit, a git remote whose
 * default branch is that commit, and each bound package name already claimed on the registry
 * (the maintainer's one-time first publish).
 */
export async function startReleaseLab(options: ReleaseLabOptions): Promise<Lab> {
  const { policy } = options;
  const repository = policy.release?.repository ?? policy.signer?.repository ?? 'mcp-release/rehearsal';
  const [owner, repo] = repository.split('/') as [string, string];
  const branch = policy.release?.branch ?? 'main';
  // The run's workflow is the one the registry binds (it publishes); the signing job runs the
  // signer's workflow, which is a reusable workflow called by it when the two differ (the
  // certificate SAN is then the reusable workflow's path, as on GitHub).
  const signerWorkflow = policy.signer?.workflow ?? 'release.yml';
  const runWorkflow = policy.trustedPublishers?.[0]?.workflow ?? signerWorkflow;
  const ref = policy.signer?.ref ?? `refs/heads/${branch}`;
  const environment = policy.trustedPublishers?.find((t) => t.environment)?.environment;
  const lab = await startLab({
    stateDir: options.stateDir,
    trustedPublishers: policy.trustedPublishers ?? [],
    claims: {
      sha: options.commit,
      repository,
      repository_owner: owner,
      ref,
      workflow_ref: `${repository}/.github/workflows/${runWorkflow}@${ref}`,
      job_workflow_ref: `${repository}/.github/workflows/${signerWorkflow}@${ref}`,
      ...(environment ? { environment } : {}),
      ...options.claims,
    },
    seedRepository: { owner, repo, path: options.repoRoot, branch, ref: options.commit },
    ...(options.immutableReleases ? { immutableReleases: true } : {}),
  });
  try {
    for (const p of policy.trustedPublishers ?? []) {
      if ((await bootstrapPackage(lab.registry, p.package)) === 'bootstrapped') options.log?.(`lab registry: claimed ${p.package} with a first publish (the one-time step before trusted publishing)`);
    }
  } catch (err) {
    await lab.stop();
    throw err;
  }
  return lab;
}

/** The lab's environment for a release process; the install registry stays the user's. */
export function releaseEnv(lab: Lab): Record<string, string> {
  return Object.fromEntries(Object.entries(lab.env).filter(([k]) => k !== 'NPM_CONFIG_REGISTRY'));
}
