import type { Plan } from '@mcp-release/manifest';
import type { ExecResult, Step } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import { gitRemoteEnv, lastLines, releaseRemote, remoteTags, requireOnDefaultBranch, type GitRemote } from '../git.js';
import type { ReleaseContext, ReleaseOptions } from '../options.js';

/** Who the annotated tag names as tagger when the environment names nobody. */
const TAGGER = { name: 'mcp-release', email: 'mcp-release@users.noreply.github.com' };

const PUSH_ATTEMPTS = 4;

/**
 * A plan can only be published when it was checked against the default branch, and (outside a
 * rehearsal) made from a clean checkout: the public steps refuse a plan frozen without a remote (a
 * local build) or over uncommitted changes rather than release a phantom version.
 */
export function requirePublishablePlan(ctx: Pick<ReleaseContext, 'manifest' | 'options'>, step: string): NonNullable<Plan['branch']> {
  const { plan } = ctx.manifest;
  if (!plan.branch) {
    throw new StepError('PLAN_NOT_PUBLISHABLE', `${step} needs a plan that was checked against the default branch, and this one was frozen without a git remote`, {
      hint: 'plan the release in a clone with its remote (origin, or release.remote in the policy); local builds are for rehearsing only',
    });
  }
  if (plan.dirty && !ctx.options.rehearsal) {
    throw new StepError('PLAN_NOT_PUBLISHABLE', `${step} refuses a plan made over uncommitted changes: what would be published is not what is committed`, {
      hint: 'commit (on the default branch) or discard the changes, then plan the release again in a new --out folder',
    });
  }
  return plan.branch;
}

function tagMessage(plan: Plan): string {
  const lines = [plan.tag, '', ...plan.packages.map((p) => `${p.name}@${p.version}`), '', `commit ${plan.commit}`, `planned ${plan.timestamp}`];
  return `${lines.join('\n')}\n`;
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface PushTagResult {
  tag: string;
  commit: string;
  object: string;
  outcome: 'pushed' | 'already-pushed';
}

/**
 * Pushes the annotated release tag on the planned commit: after the npm versions are served, and
 * before the release is undrafted. The tag object is deterministic (its date is the plan's), so a
 * re-run creates byte-identical tags. It never moves a tag and never force-pushes.
 */
export async function pushReleaseTag(ctx: ReleaseContext, wait: (ms: number) => Promise<void> = sleep): Promise<PushTagResult> {
  const { plan } = ctx.manifest;
  const { deps, repoRoot } = ctx;
  requirePublishablePlan(ctx, 'push-tag');
  const remote: GitRemote = releaseRemote(ctx.options.policy, deps.env);

  const existing = (await remoteTags(deps, repoRoot, remote, plan.tag)).get(plan.tag);
  if (existing) {
    if (existing.commit !== plan.commit) {
      throw new StepError('TAG_EXISTS_ELSEWHERE', `the tag ${plan.tag} already exists on ${remote.label} and names ${existing.commit.slice(0, 12)}, not the planned ${plan.commit.slice(0, 12)}`, {
        hint: 'a tag is never moved: bump the version (npx changeset, mcp-release version) and release that, or delete the stray tag if it was never published',
      });
    }
    return { tag: plan.tag, commit: existing.commit, object: existing.object, outcome: 'already-pushed' };
  }

  // The default branch may have been rewritten since the plan: prove it again right before the tag.
  await requireOnDefaultBranch(deps, repoRoot, ctx.options.policy, plan.commit);

  // The tag object is written straight into the object store and pushed by its id: no local ref is
  // made, so a rehearsal or a failed attempt leaves the checkout's tags as they were.
  const tagger = `${deps.env.GIT_COMMITTER_NAME || TAGGER.name} <${deps.env.GIT_COMMITTER_EMAIL || TAGGER.email}> ${plan.epoch} +0000`;
  const made = await deps.exec('git', ['mktag'], {
    cwd: repoRoot,
    input: `object ${plan.commit}\ntype commit\ntag ${plan.tag}\ntagger ${tagger}\n\n${tagMessage(plan)}`,
  });
  if (made.exitCode !== 0) {
    throw new StepError('TAG_CREATE_FAILED', `git could not create the tag ${plan.tag}`, { details: lastLines(made), hint: 'check that the planned commit is in this clone (fetch-depth: 0), then re-run' });
  }
  const object = made.stdout.trim();

  let last: ExecResult | undefined;
  for (let attempt = 1; attempt <= PUSH_ATTEMPTS; attempt += 1) {
    ctx.progress(`pushing ${plan.tag} to ${remote.label}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
    last = await deps.exec('git', ['push', '--porcelain', remote.target, `${object}:refs/tags/${plan.tag}`], {
      cwd: repoRoot,
      env: gitRemoteEnv(deps.env, remote),
      timeoutMs: 120_000,
    });
    if (last.exitCode === 0) break;
    // A push that failed on the wire may still have landed; the remote is the truth.
    const now = (await remoteTags(deps, repoRoot, remote, plan.tag).catch(() => undefined))?.get(plan.tag);
    if (now && now.commit === plan.commit) break;
    const text = `${last.stderr}${last.stdout}`;
    if (/\b(401|403)\b|Authentication failed|could not read Username|permission/i.test(text)) {
      throw new StepError('TAG_PUSH_DENIED', `${remote.label} refused the push of ${plan.tag}`, {
        details: lastLines(last),
        hint: 'the release job needs contents: write (and, on a protected tag pattern, a rule that lets the workflow create it); nothing was published by this step, re-run it after fixing',
      });
    }
    if (/\[rejected\]|already exists/i.test(text)) {
      throw new StepError('TAG_EXISTS_ELSEWHERE', `${remote.label} rejected ${plan.tag}: a different tag of that name appeared during the release`, {
        details: lastLines(last),
        hint: 'someone else pushed the tag; check it (git ls-remote --tags) and never move it: release a new version instead',
      });
    }
    if (attempt < PUSH_ATTEMPTS) await wait(500 * 2 ** (attempt - 1));
  }
  const pushed = (await remoteTags(deps, repoRoot, remote, plan.tag)).get(plan.tag);
  if (!pushed || pushed.commit !== plan.commit) {
    throw new StepError('TAG_PUSH_FAILED', `pushing ${plan.tag} to ${remote.label} failed after ${PUSH_ATTEMPTS} attempts`, {
      details: last ? lastLines(last) : [],
      hint: 'the npm packages are published and the draft is complete; run `mcp-release resume` once the remote answers, and it pushes the tag and undrafts the release',
    });
  }
  return { tag: plan.tag, commit: plan.commit, object: pushed.object || object, outcome: 'pushed' };
}

export const pushTagStep: Step<ReleaseOptions> = {
  name: 'push-tag',
  description: 'push the annotated release tag on the planned commit (after npm serves every version)',
  async run(ctx) {
    const r = await pushReleaseTag(ctx);
    const what = r.outcome === 'pushed' ? 'pushed' : 'already on the remote';
    return {
      notes: [`${r.tag} → ${r.commit.slice(0, 12)} (${what})`],
      data: { ...r, markdown: `- Tag \`${r.tag}\` on \`${r.commit.slice(0, 12)}\`: ${what}` },
    };
  },
};
