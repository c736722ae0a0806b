import type { Deps, ExecResult } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import type { Policy } from './policy.js';

/** The default branch a release must come from when the policy names none. */
export const DEFAULT_BRANCH = 'main';

export interface GitRemote {
  /** What is passed to git: a remote name (`origin`) or a URL. */
  target: string;
  /** For messages: the remote name, or the URL without credentials. */
  label: string;
}

/** The remote the default branch is read from and the tag is pushed to. */
export function releaseRemote(policy: Policy, env: NodeJS.ProcessEnv): GitRemote {
  const target = env.MCP_RELEASE_GIT_REMOTE || policy.release?.remote || 'origin';
  return { target, label: target.replace(/\/\/[^@/]*@/, '//') };
}

export function defaultBranch(policy: Policy): string {
  return policy.release?.branch ?? DEFAULT_BRANCH;
}

/**
 * Environment for git commands that talk to the remote. On GitHub (and in the lab) the job's
 * token is sent as the same basic-auth header the checkout action configures, through git's
 * environment configuration so that it never appears in a process list.
 */
export function gitRemoteEnv(env: NodeJS.ProcessEnv, remote: GitRemote): NodeJS.ProcessEnv {
  // A remote that stops sending for 30 s fails the attempt (the caller retries), unless set otherwise.
  const out: NodeJS.ProcessEnv = { GIT_HTTP_LOW_SPEED_LIMIT: '1000', GIT_HTTP_LOW_SPEED_TIME: '30', ...env, GIT_TERMINAL_PROMPT: '0' };
  const token = env.GITHUB_TOKEN;
  if (token && /^https:\/\//.test(remote.target)) {
    const n = Number(env.GIT_CONFIG_COUNT ?? 0) || 0;
    out.GIT_CONFIG_COUNT = String(n + 1);
    out[`GIT_CONFIG_KEY_${n}`] = 'http.extraHeader';
    out[`GIT_CONFIG_VALUE_${n}`] = `Authorization: basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
  }
  return out;
}

async function git(deps: Deps, cwd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<ExecResult> {
  return deps.exec('git', args, { cwd, env: env ?? deps.env, timeoutMs: 120_000 });
}

/** The last lines of a command's output, for error details. */
export function lastLines(r: ExecResult): string[] {
  return `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-4);
}

/**
 * Fetches the default branch from the remote and returns its head. The objects land in the local
 * repository, so that ancestry can be checked with git itself.
 */
export async function fetchBranchHead(deps: Deps, repoRoot: string, remote: GitRemote, branch: string): Promise<string> {
  const r = await git(deps, repoRoot, ['fetch', '--quiet', '--no-tags', remote.target, `+refs/heads/${branch}:refs/mcp-release/${branch}`], gitRemoteEnv(deps.env, remote));
  if (r.exitCode !== 0) {
    const text = `${r.stderr}${r.stdout}`;
    const missing = /couldn't find remote ref|not found|does not appear to be a git repository|No such remote/i.test(text);
    throw new StepError(
      missing ? 'GIT_BRANCH_NOT_FOUND' : 'GIT_FETCH_FAILED',
      missing
        ? `cannot read the default branch ${branch} from ${remote.label}`
        : `fetching the default branch ${branch} from ${remote.label} failed${r.timedOut ? ' (timed out)' : ''}`,
      {
        details: lastLines(r),
        hint: missing
          ? `check release.branch and release.remote in the release policy (the default branch is ${branch}, the remote ${remote.label}); in a workflow, check out with fetch-depth: 0`
          : 'check the network and the job token (contents: read), then re-run the failed job',
      },
    );
  }
  const head = await git(deps, repoRoot, ['rev-parse', `refs/mcp-release/${branch}`]);
  return head.stdout.trim();
}

/** Whether `commit` is an ancestor of (or equal to) `head`. */
export async function isAncestor(deps: Deps, repoRoot: string, commit: string, head: string): Promise<boolean> {
  const r = await git(deps, repoRoot, ['merge-base', '--is-ancestor', commit, head]);
  if (r.exitCode === 0) return true;
  if (r.exitCode === 1) return false;
  throw new StepError('GIT_ANCESTRY_UNKNOWN', `git cannot tell whether ${commit.slice(0, 12)} is on the default branch`, {
    details: lastLines(r),
    hint: 'fetch the full history (actions/checkout with fetch-depth: 0) and re-run',
  });
}

/**
 * Proves the commit is on the default branch: only a version that is committed on the default
 * branch is ever released (phantom versions lived on orphaned tag commits).
 */
export async function requireOnDefaultBranch(
  deps: Deps,
  repoRoot: string,
  policy: Policy,
  commit: string,
): Promise<{ name: string; remote: string; head: string }> {
  const remote = releaseRemote(policy, deps.env);
  const branch = defaultBranch(policy);
  const head = await fetchBranchHead(deps, repoRoot, remote, branch);
  if (!(await isAncestor(deps, repoRoot, commit, head))) {
    throw new StepError('COMMIT_NOT_ON_DEFAULT_BRANCH', `commit ${commit.slice(0, 12)} is not on ${branch} at ${remote.label} (its head is ${head.slice(0, 12)})`, {
      hint: `release only what is merged: merge the change (and the version bump from \`mcp-release version\`) into ${branch}, then dispatch the release from ${branch}`,
    });
  }
  return { name: branch, remote: remote.label, head };
}

export interface RemoteTag {
  name: string;
  /** The tag object (annotated) or the commit (lightweight) the ref points at. */
  object: string;
  /** The commit the tag finally names. */
  commit: string;
}

/** Tags on the remote whose names start with `prefix`, peeled to their commits. */
export async function remoteTags(deps: Deps, repoRoot: string, remote: GitRemote, prefix = ''): Promise<Map<string, RemoteTag>> {
  const r = await git(deps, repoRoot, ['ls-remote', '--tags', remote.target, `refs/tags/${prefix}*`], gitRemoteEnv(deps.env, remote));
  if (r.exitCode !== 0) {
    throw new StepError('GIT_LS_REMOTE_FAILED', `cannot list the tags of ${remote.label}`, {
      details: lastLines(r),
      hint: 'check release.remote in the release policy and the job token, then re-run',
    });
  }
  const tags = new Map<string, RemoteTag>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([0-9a-f]{40,64})\trefs\/tags\/(.+?)(\^\{\})?$/.exec(line.trim());
    if (!m) continue;
    const [, sha, name, peeled] = m as unknown as [string, string, string, string | undefined];
    const t = tags.get(name) ?? { name, object: sha, commit: sha };
    if (peeled) t.commit = sha;
    else {
      t.object = sha;
      if (!tags.has(name)) t.commit = sha;
    }
    tags.set(name, t);
  }
  return tags;
}
