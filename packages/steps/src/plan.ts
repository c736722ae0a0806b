import { readFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import type { Plan, PlannedPackage } from '@mcp-release/manifest';
import type { Deps, Step } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import type { ReleaseOptions } from './options.js';
import { applyTagScheme, type Policy } from './policy.js';
import { identifySource } from './source.js';

interface PackageJson {
  name?: string;
  version?: string;
  private?: boolean;
}

async function readPackage(repoRoot: string, rel: string): Promise<PlannedPackage> {
  const file = path.join(repoRoot, rel, 'package.json');
  let pkg: PackageJson;
  try {
    pkg = JSON.parse(await readFile(file, 'utf8')) as PackageJson;
  } catch (err) {
    throw new StepError('PLAN_PACKAGE_UNREADABLE', `cannot read ${path.join(rel, 'package.json')}: ${(err as Error).message}`, {
      cause: err,
      hint: 'fix the package path under `packages:` in the release policy',
    });
  }
  if (!pkg.name || !pkg.version) {
    throw new StepError('PLAN_PACKAGE_INVALID', `${path.join(rel, 'package.json')} has no name or version`, { hint: 'give the package a name and a version' });
  }
  if (pkg.private) {
    throw new StepError('PLAN_PACKAGE_PRIVATE', `${pkg.name} (${rel}) is private and cannot be released`, {
      hint: 'remove "private": true from its package.json, or remove it from `packages:` in the release policy',
    });
  }
  if (!semver.valid(pkg.version)) {
    throw new StepError('PLAN_VERSION_INVALID', `${pkg.name} has version ${JSON.stringify(pkg.version)}, which is not a valid semver version`, {
      hint: 'set a version such as 1.2.3 (changesets does this for you: npx changeset version)',
    });
  }
  return { name: pkg.name, version: pkg.version, path: rel.split(path.sep).join('/') };
}

/**
 * Freezes the plan: packages and versions as committed, the tag, the commit, and the release
 * time, read exactly once. Every later step reads these and never the clock.
 */
export async function freezePlan(repoRoot: string, policy: Policy, deps: Deps, timestamp: ReleaseOptions['timestamp']): Promise<Plan> {
  const id = await identifySource(deps.exec, repoRoot);
  if (!id.commit) {
    throw new StepError('PLAN_NOT_GIT', `${repoRoot} is not inside a git repository with at least one commit`, {
      hint: 'run from a clone of the repository that is being released (git init && git commit for a new one)',
    });
  }
  const packages: PlannedPackage[] = [];
  for (const p of policy.packages) {
    const planned = await readPackage(repoRoot, p.path);
    if (p.tag) planned.tag = applyTagScheme(p.tag, planned.version);
    packages.push(planned);
  }
  const primary = packages[0] as PlannedPackage;
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
    const r = await deps.exec('git', ['log', '-1', '--format=%ct', id.commit], { cwd: repoRoot });
    epoch = Number(r.stdout.trim());
    source = 'commit';
  }
  return {
    commit: id.commit,
    dirty: id.dirty,
    timestamp: new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    epoch,
    timestampSource: source,
    tag: applyTagScheme(policy.release?.tag ?? 'v{version}', primary.version),
    packages,
  };
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
      const now = await readPackage(ctx.repoRoot, p.path);
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
