import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Deps } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import { defaultBranch, fetchBranchHead, gitRemoteEnv, isAncestor, releaseRemote } from '../git.js';
import type { Policy } from '../policy.js';
import { CHANGESET_DIR, fileAt, git, outputTail, readChangesets, requireRepoRoot, splitNul, workspaceAt } from './repo.js';

export interface VersionInput {
  repoRoot: string;
  policy: Policy;
  deps: Deps;
  /** Push the version commit to the remote's default branch; false leaves it local. */
  push: boolean;
  log?: (line: string) => void;
}

export interface VersionBump {
  name: string;
  /** Folder relative to the repository root. */
  path: string;
  from: string | undefined;
  to: string;
}

export interface VersionResult {
  status: 'nothing-to-version' | 'versioned';
  branch: string;
  /** The remote, for messages (a URL without credentials). */
  remote: string;
  /** The commit the run started from (the remote's default branch). */
  base: string;
  /** The version commit, when one was made. */
  commit?: string;
  pushed: boolean;
  /** The changeset files consumed. */
  changesets: string[];
  /** Every package whose version changed. */
  packages: VersionBump[];
}

/** `node_modules/.bin/changeset` of the repository, looked for from `repoRoot` upwards. */
export async function findChangesetBin(repoRoot: string): Promise<string> {
  let dir = path.resolve(repoRoot);
  for (;;) {
    const bin = path.join(dir, 'node_modules', '.bin', 'changeset');
    try {
      await access(bin);
      return bin;
    } catch {
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new StepError('VERSION_CHANGESETS_CLI_MISSING', `the changesets CLI is not installed for ${repoRoot} (no node_modules/.bin/changeset in it or above it)`, {
    hint: 'install it as a dev dependency of the repository (npm install --save-dev @changesets/cli), run npm ci, and run mcp-release version again',
  });
}

function commitMessage(bumps: VersionBump[], changesets: string[]): string {
  const subject = bumps.length ? `Version packages: ${bumps.map((b) => `${b.name}@${b.to}`).join(', ')}` : 'Version packages: changesets consumed, no version changes';
  const body = [
    ...bumps.map((b) => `${b.name}@${b.to} (was ${b.from ?? 'unversioned'})`),
    '',
    `Changesets: ${changesets.map((c) => path.posix.basename(c, '.md')).join(', ')}`,
  ];
  return `${subject}\n\n${body.join('\n')}\n`;
}

/** The first lines of a failed tool's output, without stack frames: where the reason is. */
function reasonLines(r: { stdout: string; stderr: string }, n = 12): string[] {
  return `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !/\bat (?:async )?(?:\S+ \(|\/|node:)/.test(l))
    .slice(0, n);
}

/** Puts the work tree and branch back to `commit` (the state before the run). */
async function restore(deps: Deps, repoRoot: string, commit: string): Promise<boolean> {
  const reset = await git(deps, repoRoot, ['reset', '--hard', '--quiet', commit]);
  const clean = await git(deps, repoRoot, ['clean', '-fd', '--quiet']);
  return reset.exitCode === 0 && clean.exitCode === 0;
}

/**
 * `mcp-release version`: on an up-to-date, clean checkout of the default branch, runs the
 * repository's own `changeset version`, commits the version bumps and changelogs on the default
 * branch and pushes that commit (never forced). A release is then cut from that commit: the
 * release refuses any commit that is not on the default branch. Whatever fails after
 * `changeset version` started leaves the checkout as it was.
 */
export async function versionPackages(input: VersionInput): Promise<VersionResult> {
  const { repoRoot, policy, deps } = input;
  const log = input.log ?? ((): void => undefined);
  const branch = defaultBranch(policy);
  const remote = releaseRemote(policy, deps.env);

  await requireRepoRoot(deps, repoRoot, 'version');
  const current = await git(deps, repoRoot, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  const onBranch = current.exitCode === 0 ? current.stdout.trim() : undefined;
  if (onBranch !== branch) {
    throw new StepError('VERSION_NOT_ON_DEFAULT_BRANCH', `versions are bumped on the default branch ${branch}, but the checkout is ${onBranch ? `on ${onBranch}` : 'a detached HEAD'}`, {
      hint: `switch to it and update it (git switch ${branch} && git pull --ff-only), then run mcp-release version again; merge feature branches, with their changesets, through pull requests first`,
    });
  }
  const status = await git(deps, repoRoot, ['status', '--porcelain=v1', '-z', '--untracked-files=all']);
  const dirty = splitNul(status.stdout);
  if (status.exitCode !== 0 || dirty.length) {
    throw new StepError('VERSION_DIRTY_TREE', `the work tree has ${dirty.length} uncommitted change(s); the version commit must contain only what changesets writes`, {
      details: dirty.slice(0, 10).map((d) => d.trim()),
      hint: 'commit them through a pull request, or stash them (git stash -u), then run mcp-release version again',
    });
  }
  const headSha = (await git(deps, repoRoot, ['rev-parse', 'HEAD'])).stdout.trim();
  log(`fetching ${branch} from ${remote.label}`);
  const remoteHead = await fetchBranchHead(deps, repoRoot, remote, branch);
  if (remoteHead !== headSha) {
    const behind = await isAncestor(deps, repoRoot, headSha, remoteHead);
    const ahead = !behind && (await isAncestor(deps, repoRoot, remoteHead, headSha));
    const where = `${branch} is at ${headSha.slice(0, 12)} here but at ${remoteHead.slice(0, 12)} on ${remote.label}`;
    if (behind) {
      throw new StepError('VERSION_BEHIND_REMOTE', `${where}: the checkout is behind`, {
        hint: `update it (git pull --ff-only ${remote.label} ${branch}) so that the versions include every merged changeset, then run mcp-release version again`,
      });
    }
    throw new StepError(ahead ? 'VERSION_AHEAD_OF_REMOTE' : 'VERSION_DIVERGED', `${where}: the checkout has ${ahead ? 'commits the remote does not have' : 'diverged from the remote'}`, {
      hint: ahead
        ? `versions are bumped from what is merged on ${remote.label}: merge those commits through a pull request, or drop them (git reset --hard ${remoteHead.slice(0, 12)}), then run mcp-release version again`
        : `make the branch equal the remote's (git fetch ${remote.label} && git reset --hard ${remoteHead.slice(0, 12)}, after saving any work of yours), then run mcp-release version again`,
    });
  }

  const configText = await fileAt(deps, repoRoot, 'HEAD', `${CHANGESET_DIR}/config.json`);
  if (configText === undefined) {
    throw new StepError('VERSION_NO_CHANGESETS_CONFIG', `the repository has no ${CHANGESET_DIR}/config.json, so changesets is not set up`, {
      hint: 'run `npx changeset init`, commit the .changeset folder, and add changesets with `npx changeset`',
    });
  }
  let config: { commit?: unknown };
  try {
    config = JSON.parse(configText) as { commit?: unknown };
  } catch (err) {
    throw new StepError('VERSION_CHANGESETS_CONFIG_INVALID', `${CHANGESET_DIR}/config.json is not valid JSON: ${(err as Error).message}`, { cause: err, hint: `fix the JSON in ${CHANGESET_DIR}/config.json` });
  }
  if (config.commit) {
    throw new StepError('VERSION_CHANGESETS_COMMITS', `${CHANGESET_DIR}/config.json sets "commit", so changeset version would make its own commit`, {
      hint: `set "commit": false in ${CHANGESET_DIR}/config.json: mcp-release version makes the version commit itself and pushes it`,
    });
  }

  const workspace = await workspaceAt(deps, repoRoot, 'HEAD', policy);
  const changesets = await readChangesets(deps, repoRoot, 'HEAD', workspace);
  const base = { status: 'nothing-to-version' as const, branch, remote: remote.label, base: headSha, pushed: false, changesets: [], packages: [] };
  if (changesets.length === 0) {
    log('no changesets: nothing to version');
    return base;
  }
  const bin = await findChangesetBin(repoRoot);

  log(`changeset version (${changesets.length} changeset(s))`);
  const run = await deps.exec(process.execPath, [bin, 'version'], { cwd: repoRoot, env: deps.env, timeoutMs: 300_000 });
  if (run.exitCode !== 0) {
    const restored = await restore(deps, repoRoot, headSha);
    throw new StepError('VERSION_CHANGESET_FAILED', `\`changeset version\` ${run.timedOut ? 'timed out' : `exited with status ${run.exitCode}`}; ${restored ? 'the checkout was put back as it was' : 'the checkout could not be restored'}`, {
      details: reasonLines(run),
      hint: restored ? 'run `npx changeset version` by hand to see the whole error, fix it, and run mcp-release version again' : `restore it by hand (git reset --hard ${headSha.slice(0, 12)} && git clean -fd), then fix the error above`,
    });
  }

  const packages: VersionBump[] = [];
  for (const pkg of workspace.values()) {
    const file = path.join(repoRoot, pkg.path, 'package.json');
    const now = JSON.parse(await readFile(file, 'utf8')) as { version?: unknown };
    if (typeof now.version === 'string' && now.version !== pkg.version) packages.push({ name: pkg.name, path: pkg.path, from: pkg.version, to: now.version });
  }
  packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const consumed = changesets.map((c) => c.file);
  const add = await git(deps, repoRoot, ['add', '--all']);
  const commit = add.exitCode === 0 ? await git(deps, repoRoot, ['commit', '--quiet', '--file', '-'], { input: commitMessage(packages, consumed) }) : add;
  if (commit.exitCode !== 0) {
    const restored = await restore(deps, repoRoot, headSha);
    throw new StepError('VERSION_COMMIT_FAILED', `committing the version bump failed; ${restored ? 'the checkout was put back as it was' : 'the checkout could not be restored'}`, {
      details: outputTail(commit),
      hint: 'set a committer identity (git config user.name and user.email; in a workflow, the bot account) and check the commit hooks, then run mcp-release version again',
    });
  }
  const versionCommit = (await git(deps, repoRoot, ['rev-parse', 'HEAD'])).stdout.trim();
  const result: VersionResult = { status: 'versioned', branch, remote: remote.label, base: headSha, commit: versionCommit, pushed: false, changesets: consumed, packages };
  if (!input.push) {
    log(`committed ${versionCommit.slice(0, 12)} on ${branch}; not pushed`);
    return result;
  }

  log(`pushing ${versionCommit.slice(0, 12)} to ${branch} on ${remote.label}`);
  const push = await git(deps, repoRoot, ['push', '--porcelain', remote.target, `HEAD:refs/heads/${branch}`], { env: gitRemoteEnv(deps.env, remote) });
  if (push.exitCode !== 0) {
    const text = `${push.stdout}\n${push.stderr}`;
    const rejected = /\[rejected\]/.test(text);
    const refused = !rejected && /\[remote rejected\]/.test(text);
    const undone = await restore(deps, repoRoot, headSha);
    const local = undone
      ? `the version commit ${versionCommit.slice(0, 12)} was not pushed and has been undone here (${branch} is back at ${headSha.slice(0, 12)}, the changesets are pending again)`
      : `the version commit ${versionCommit.slice(0, 12)} was not pushed and is still on the local ${branch}; undo it with git reset --hard ${headSha.slice(0, 12)}`;
    if (rejected) {
      throw new StepError('VERSION_PUSH_REJECTED', `someone pushed to ${branch} on ${remote.label} first, so the push was rejected; ${local}`, {
        details: outputTail(push),
        hint: `pull the new commits (git pull --ff-only ${remote.label} ${branch}) and run mcp-release version again; it never force-pushes`,
      });
    }
    throw new StepError(refused ? 'VERSION_PUSH_REFUSED' : 'VERSION_PUSH_FAILED', `${refused ? `${remote.label} refused the push to ${branch}` : `pushing to ${branch} on ${remote.label} failed`}; ${local}`, {
      details: outputTail(push),
      hint: refused
        ? `the branch is protected or a hook refused it: let the account that runs mcp-release version push to ${branch} (or bypass the protection for it), then run it again`
        : 'check the remote and the credentials (in a workflow: permissions: contents: write), then run mcp-release version again',
    });
  }
  result.pushed = true;
  return result;
}
