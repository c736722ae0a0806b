import { readFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import type { Plan, PlannedPackage } from '@mcp-release/manifest';
import type { Deps, Logger, Step } from '@mcp-release/pipeline';
import validateNpmName from './npm-name.js';
import { StepError } from './errors.js';
import type { ReleaseOptions } from './options.js';
import { releaseRemote, remoteTags, requireOnDefaultBranch, type GitRemote } from './git.js';
import { applyTagScheme, tagVariables, type Policy } from './policy.js';
import { identifySource } from './source.js';

interface PackageJson {
  name?: string;
  version?: string;
  private?: boolean;
}

function checkPackage(pkg: PackageJson, rel: string): PlannedPackage {
  if (!pkg.name || !pkg.version) {
    throw new StepError('PLAN_PACKAGE_INVALID', `${path.join(rel, 'package.json')} has no name or version`, { hint: 'give the package a name and a version' });
  }
  if (pkg.private) {
    throw new StepError('PLAN_PACKAGE_PRIVATE', `${pkg.name} (${rel}) is private and cannot be released`, {
      hint: 'remove "private": true from its package.json, or remove it from `packages:` in the release policy',
    });
  }
  if (!validateNpmName(pkg.name)) {
    throw new StepError('PLAN_PACKAGE_NAME_INVALID', `${JSON.stringify(pkg.name)} (${rel}) is not a valid npm package name`, {
      hint: 'npm names are lower case, at most 214 characters, URL-safe, optionally @scope/name; rename the package',
    });
  }
  if (!semver.valid(pkg.version) || semver.clean(pkg.version) !== pkg.version) {
    throw new StepError('PLAN_VERSION_INVALID', `${pkg.name} has version ${JSON.stringify(pkg.version)}, which is not a valid semver version`, {
      hint: 'set a version such as 1.2.3 (changesets does this for you: npx changeset version)',
    });
  }
  return { name: pkg.name, version: pkg.version, path: rel.split(path.sep).join('/') };
}

function parsePackageJson(text: string, where: string): PackageJson {
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as PackageJson;
  } catch (err) {
    throw new StepError('PLAN_PACKAGE_UNREADABLE', `${where} is not valid JSON: ${(err as Error).message}`, { cause: err, hint: `fix ${where}` });
  }
}

/** The package as it is in the work tree. */
async function readPackage(repoRoot: string, rel: string): Promise<PlannedPackage> {
  const file = path.join(repoRoot, rel, 'package.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new StepError('PLAN_PACKAGE_UNREADABLE', `cannot read ${path.join(rel, 'package.json')}: ${(err as Error).message}`, {
      cause: err,
      hint: 'fix the package path under `packages:` in the release policy',
    });
  }
  return checkPackage(parsePackageJson(text, path.join(rel, 'package.json')), rel);
}

/**
 * The package as committed: versions are read from the commit, never from the work tree, and a
 * work tree whose version differs from the commit is refused (a version that is not committed
 * would be a phantom: released, but on no branch).
 */
async function readCommittedPackage(deps: Deps, repoRoot: string, commit: string, rel: string): Promise<PlannedPackage> {
  const posix = rel.split(path.sep).join('/').replace(/^\.\//, '');
  const shown = await deps.exec('git', ['show', `${commit}:./${posix}/package.json`], { cwd: repoRoot });
  if (shown.exitCode !== 0) {
    throw new StepError('PLAN_PACKAGE_NOT_COMMITTED', `${posix}/package.json is not committed at ${commit.slice(0, 12)}`, {
      hint: 'commit the package (and its version) on the default branch, or fix its path under `packages:` in the release policy',
    });
  }
  const committed = checkPackage(parsePackageJson(shown.stdout, `${posix}/package.json at ${commit.slice(0, 12)}`), rel);
  const worktree = await readPackage(repoRoot, rel);
  if (worktree.name !== committed.name || worktree.version !== committed.version) {
    throw new StepError(
      'PLAN_VERSION_NOT_COMMITTED',
      `${posix}/package.json says ${worktree.name}@${worktree.version} in the work tree, but ${committed.name}@${committed.version} is committed at ${commit.slice(0, 12)}`,
      { hint: 'commit the version bump on the default branch first (mcp-release version does it), or discard the uncommitted change' },
    );
  }
  return committed;
}

/**
 * Freezes the plan: packages and versions as committed, the tag, the commit, and the release
 * time, read exactly once. Every later step reads these and never the clock.
 */
export async function freezePlan(repoRoot: string, policy: Policy, deps: Deps, timestamp: ReleaseOptions['timestamp'], log?: Logger): Promise<Plan> {
  const id = await identifySource(deps.exec, repoRoot);
  if (!id.commit) {
    throw new StepError('PLAN_NOT_GIT', `${repoRoot} is not inside a git repository with at least one commit`, {
      hint: 'run from a clone of the repository that is being released (git init && git commit for a new one)',
    });
  }
  const commit = id.commit;
  const prereleaseTag = policy.publish?.npm?.prereleaseTag ?? 'next';
  const packages: PlannedPackage[] = [];
  for (const p of policy.packages) {
    const planned = await readCommittedPackage(deps, repoRoot, commit, p.path);
    if (packages.some((q) => q.name === planned.name)) {
      throw new StepError('PLAN_DUPLICATE_PACKAGE', `${planned.name} is listed twice under packages: in the release policy`, { hint: 'list each package once' });
    }
    planned.distTag = semver.prerelease(planned.version) ? prereleaseTag : 'latest';
    packages.push(planned);
  }
  const filter = (deps.env.MCP_RELEASE_PACKAGES ?? '').trim();
  if (filter) {
    const wanted = filter.split(',').map((s) => s.trim());
    const unknown = wanted.filter((w) => !packages.some((p) => p.name === w));
    if (unknown.length || wanted.some((w) => w === '')) {
      throw new StepError('PLAN_PACKAGES_UNKNOWN', `the package filter names ${unknown.map((u) => JSON.stringify(u)).join(', ') || 'an empty name'}, which the release policy does not release`, {
        hint: `name packages of the policy, separated by commas: ${packages.map((p) => p.name).join(',')}`,
      });
    }
    for (let i = packages.length - 1; i >= 0; i -= 1) if (!wanted.includes((packages[i] as PlannedPackage).name)) packages.splice(i, 1);
  }
  const primary = packages[0] as PlannedPackage;

  // The one clock read of the whole release.
  let epoch: number;
  let source: Plan['timestampSource'];
  const sde = deps.env.SOURCE_DATE_EPOCH;
  if (timestamp?.source === 'explicit') {
    epoch = timestamp.epoch;
    source = 'explicit';
  } else if (sde !== undefined && sde !== '') {
    if (!/^\d+$/.test(sde)) {
      throw new StepError('PLAN_BAD_SOURCE_DATE_EPOCH', `SOURCE_DATE_EPOCH=${JSON.stringify(sde)} is not a whole number of seconds`, {
        hint: 'set SOURCE_DATE_EPOCH to seconds since 1970 (e.g. $(git log -1 --format=%ct)) or unset it',
      });
    }
    epoch = Number(sde);
    source = 'source-date-epoch';
  } else if (timestamp?.source === 'clock') {
    epoch = Math.floor(deps.now().getTime() / 1000);
    source = 'clock';
  } else {
    const r = await deps.exec('git', ['log', '-1', '--format=%ct', commit], { cwd: repoRoot });
    epoch = Number(r.stdout.trim());
    source = 'commit';
  }

  // The default branch: checked whenever a remote is known; publishing refuses a plan without it.
  let branch: Plan['branch'];
  const remote = releaseRemote(policy, deps.env);
  if (await remoteKnown(deps, repoRoot, remote.target)) {
    branch = await requireOnDefaultBranch(deps, repoRoot, policy, commit);
  } else {
    log?.warn(`no git remote ${remote.label}: the commit is not checked against the default branch, and this plan cannot be published`);
  }

  const scheme = policy.release?.tag ?? 'v{version}';
  const vars = tagVariables(primary.version, epoch);
  if (scheme.includes('{n}')) {
    if (!branch) {
      throw new StepError('PLAN_TAG_NEEDS_REMOTE', `the tag scheme ${scheme} numbers releases ({n}) from the remote's tags, but there is no remote ${remote.label}`, {
        hint: 'set release.remote in the release policy (or MCP_RELEASE_GIT_REMOTE), or use a tag scheme without {n}',
      });
    }
    vars.n = String(await nextReleaseNumber(deps, repoRoot, remote, scheme, vars));
  }
  const tag = applyTagScheme(scheme, vars);
  await assertTagName(deps, repoRoot, tag);
  for (const [i, p] of policy.packages.entries()) {
    const planned = packages[i] as PlannedPackage;
    if (p.tag) {
      planned.tag = applyTagScheme(p.tag, { ...tagVariables(planned.version, epoch), ...(vars.n ? { n: vars.n } : {}) });
      await assertTagName(deps, repoRoot, planned.tag);
    }
  }
  return {
    commit,
    dirty: id.dirty,
    timestamp: new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    epoch,
    timestampSource: source,
    tag,
    packages,
    ...(branch ? { branch } : {}),
  };
}

async function remoteKnown(deps: Deps, repoRoot: string, target: string): Promise<boolean> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target) || target.startsWith('/')) return true;
  const r = await deps.exec('git', ['remote', 'get-url', target], { cwd: repoRoot });
  return r.exitCode === 0;
}

/** The smallest release number {n} >= 1 whose tag is not on the remote yet. */
async function nextReleaseNumber(deps: Deps, repoRoot: string, remote: GitRemote, scheme: string, vars: Record<string, string>): Promise<number> {
  const prefix = applyTagScheme(scheme.slice(0, scheme.indexOf('{n}')), vars);
  const taken = await remoteTags(deps, repoRoot, remote, prefix);
  let n = 1;
  while (taken.has(applyTagScheme(scheme, { ...vars, n: String(n) }))) n += 1;
  return n;
}

async function assertTagName(deps: Deps, repoRoot: string, tag: string): Promise<void> {
  const r = await deps.exec('git', ['check-ref-format', `refs/tags/${tag}`], { cwd: repoRoot });
  if (r.exitCode !== 0 || tag.length > 255) {
    throw new StepError('PLAN_TAG_INVALID', `the tag scheme gives ${JSON.stringify(tag)}, which is not a valid git tag name`, {
      hint: 'fix release.tag (or packages[].tag) in the release policy; tags cannot contain spaces, ~ ^ : ? * [ \\ or ..',
    });
  }
}

/** The first step: proves the frozen plan still describes the checkout being released. */
export const planStep: Step<ReleaseOptions> = {
  name: 'plan',
  description: 'check the frozen plan against the checkout (commit, package versions)',
  async run(ctx) {
    const plan = ctx.manifest.plan;
    const head = await ctx.deps.exec('git', ['rev-parse', 'HEAD'], { cwd: ctx.repoRoot });
    const commit = head.stdout.trim();
    if (head.exitCode !== 0 || commit !== plan.commit) {
      throw new StepError('PLAN_COMMIT_MISMATCH', `the manifest was planned for commit ${plan.commit}, but the checkout is at ${commit || '(no commit)'}`, {
        hint: `check out ${plan.commit} to continue that release, or use a new --out folder to plan a new one`,
      });
    }
    for (const p of plan.packages) {
      const now = await readCommittedPackage(ctx.deps, ctx.repoRoot, plan.commit, p.path);
      if (now.name !== p.name || now.version !== p.version) {
        throw new StepError('PLAN_VERSION_CHANGED', `${p.path} is now ${now.name}@${now.version}, but the plan froze ${p.name}@${p.version}`, {
          hint: 'versions are frozen when the release is planned; use a new --out folder to plan a release of the new version',
        });
      }
    }
    const notes = [`${plan.tag} at ${plan.commit.slice(0, 12)}${plan.dirty ? ' (uncommitted changes)' : ''}, ${plan.timestamp}`];
    if (plan.dirty) ctx.log.warn('the work tree has uncommitted changes: fine for a rehearsal, refused by a real release');
    return { notes, data: { packages: plan.packages.map((p) => `${p.name}@${p.version}`) } };
  },
};
