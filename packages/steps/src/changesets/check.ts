import type { Deps } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import { defaultBranch, releaseRemote } from '../git.js';
import type { Policy } from '../policy.js';
import { CHANGESET_DIR, git, MAX_LISTING_CHARS, outputTail, owningPackage, readChangesets, releasablePackages, requireRepoRoot, requireWhole, shownName, splitNul, workspaceAt, type BumpType } from './repo.js';

export interface ChangesetCheckInput {
  repoRoot: string;
  /** What the pull request is compared against, e.g. `origin/main`. */
  base: string;
  /** The pull request's commit, e.g. `HEAD`. */
  head: string;
  policy: Policy;
  deps: Deps;
}

export interface PackageChanges {
  name: string;
  /** Folder relative to the repository root. */
  path: string;
  /** Changed files inside the package's folder (ignored files excluded). */
  files: string[];
  /** The changesets that name the package, with the bump each asks for. */
  changesets: Array<{ file: string; type: BumpType }>;
}

export interface ChangesetCheck {
  /** True when every changed, non-exempt releasable package has a changeset. */
  ok: boolean;
  base: { ref: string; commit: string };
  head: { ref: string; commit: string };
  mergeBase: string;
  covered: PackageChanges[];
  uncovered: PackageChanges[];
  /** Changed packages that policy opts out (changesets.exempt). */
  exempt: PackageChanges[];
  /** Changed files matching changesets.ignore. */
  ignoredFiles: string[];
  /** Changed files outside every releasable package (changeset files included). */
  otherFiles: string[];
  /** Every changeset at head. */
  changesets: Array<{ file: string; releases: Array<{ name: string; type: BumpType }> }>;
}

/** The branch a pull request is compared against: changesets.baseBranch, then release.branch, then main. */
export function changesetsBaseBranch(policy: Policy): string {
  return policy.changesets?.baseBranch ?? defaultBranch(policy);
}

/** The default `base` for check-changesets: the base branch as the release remote's tracking ref (`origin/main`), or the branch itself for a URL remote. */
export function changesetsBaseRef(policy: Policy, env: NodeJS.ProcessEnv): string {
  const remote = releaseRemote(policy, env).target;
  const branch = changesetsBaseBranch(policy);
  return /^[A-Za-z0-9_.-]+$/.test(remote) ? `${remote}/${branch}` : branch;
}

async function resolveCommit(deps: Deps, repoRoot: string, ref: string, role: 'base' | 'head'): Promise<string> {
  const r = await git(deps, repoRoot, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  const commit = r.stdout.trim();
  if (r.exitCode !== 0 || !commit) {
    throw new StepError('CHANGESETS_REF_UNKNOWN', `the ${role} revision ${JSON.stringify(ref)} is not a commit in ${repoRoot}`, {
      details: outputTail(r),
      hint:
        role === 'base'
          ? 'fetch the base branch first (git fetch origin main); in a workflow, check out with fetch-depth: 0 and pass --base origin/<base branch>'
          : 'pass a commit or branch that exists in this clone (the pull request head, usually HEAD)',
    });
  }
  return commit;
}

/**
 * The check a pull request gets in CI: every releasable package whose files changed since the
 * merge base must be named by a changeset present at head (any bump type, `none` included),
 * unless the policy opts it out (changesets.exempt) or the files are ignored (changesets.ignore).
 * Malformed changesets and changesets that name unknown packages throw coded errors; uncovered
 * packages do not throw here: the result says so (ok: false), and `requireChangesets` turns it
 * into the error, after the caller has printed the result.
 */
export async function checkChangesets(input: ChangesetCheckInput): Promise<ChangesetCheck> {
  const { repoRoot, policy, deps } = input;
  await requireRepoRoot(deps, repoRoot, 'check-changesets');
  const base = await resolveCommit(deps, repoRoot, input.base, 'base');
  const head = await resolveCommit(deps, repoRoot, input.head, 'head');
  const mb = await git(deps, repoRoot, ['merge-base', base, head]);
  if (mb.exitCode !== 0 || !mb.stdout.trim()) {
    throw new StepError('CHANGESETS_NO_MERGE_BASE', `${input.base} and ${input.head} have no common history in this clone`, {
      details: outputTail(mb),
      hint: 'the clone is probably shallow: check out with fetch-depth: 0 (or git fetch --unshallow) and re-run',
    });
  }
  const mergeBase = mb.stdout.trim();
  const range = `${base}...${head}`;
  const diff = requireWhole(await git(deps, repoRoot, ['diff', '--name-only', '-z', '--no-renames', range], { maxBuffer: MAX_LISTING_CHARS + 1 }), MAX_LISTING_CHARS, `the list of files changed in ${input.base}...${input.head}`);
  if (diff.exitCode !== 0) {
    throw new StepError('CHANGESETS_GIT_FAILED', `git cannot list the files changed in ${input.base}...${input.head}`, { details: outputTail(diff), hint: 'fetch the full history (fetch-depth: 0) and re-run' });
  }
  const changed = splitNul(diff.stdout);

  const ignoreGlobs = policy.changesets?.ignore ?? [];
  let ignored = new Set<string>();
  if (ignoreGlobs.length && changed.length) {
    const r = requireWhole(await git(deps, repoRoot, ['diff', '--name-only', '-z', '--no-renames', range, '--', ...ignoreGlobs.map((g) => `:(glob)${g}`)], { maxBuffer: MAX_LISTING_CHARS + 1 }), MAX_LISTING_CHARS, `the list of ignored files changed in ${input.base}...${input.head}`);
    if (r.exitCode !== 0) {
      throw new StepError('CHANGESETS_IGNORE_INVALID', `changesets.ignore in the release policy has a pattern git cannot use: ${ignoreGlobs.join(', ')}`, {
        details: outputTail(r),
        hint: 'use path globs relative to the repository root: * within one folder, ** across folders (docs/**, **/*.test.ts)',
      });
    }
    ignored = new Set(splitNul(r.stdout));
  }

  const workspace = await workspaceAt(deps, repoRoot, head, policy);
  const exemptNames = policy.changesets?.exempt ?? [];
  const strayExempt = exemptNames.filter((n) => !workspace.has(n));
  if (strayExempt.length) {
    throw new StepError('CHANGESETS_EXEMPT_UNKNOWN', `changesets.exempt in the release policy names ${strayExempt.map(shownName).join(', ')}, which is not a package of this workspace`, {
      details: [`workspace packages: ${[...workspace.keys()].sort().map(shownName).join(', ')}`],
      hint: 'list package names (the "name" in package.json), not folders, under changesets.exempt',
    });
  }
  const changesets = await readChangesets(deps, repoRoot, head, workspace);

  const packages = releasablePackages(policy, workspace);
  const touched = new Map<string, PackageChanges>();
  const otherFiles: string[] = [];
  for (const file of changed) {
    if (ignored.has(file)) continue;
    const owner = file.startsWith(`${CHANGESET_DIR}/`) ? undefined : owningPackage(file, packages);
    if (!owner) {
      otherFiles.push(file);
      continue;
    }
    const entry = touched.get(owner.name) ?? { name: owner.name, path: owner.path, files: [], changesets: [] };
    entry.files.push(file);
    touched.set(owner.name, entry);
  }
  const result: ChangesetCheck = {
    ok: true,
    base: { ref: input.base, commit: base },
    head: { ref: input.head, commit: head },
    mergeBase,
    covered: [],
    uncovered: [],
    exempt: [],
    ignoredFiles: changed.filter((f) => ignored.has(f)),
    otherFiles,
    changesets: changesets.map((c) => ({ file: c.file, releases: c.releases.map((r) => ({ name: r.name, type: r.type })) })),
  };
  for (const p of packages) {
    const entry = touched.get(p.name);
    if (!entry) continue;
    entry.changesets = changesets.flatMap((c) => c.releases.filter((r) => r.name === p.name).map((r) => ({ file: c.file, type: r.type })));
    if (exemptNames.includes(p.name)) result.exempt.push(entry);
    else if (entry.changesets.length) result.covered.push(entry);
    else result.uncovered.push(entry);
  }
  result.ok = result.uncovered.length === 0;
  return result;
}

/** Throws the coded error for a check that found packages without a changeset. */
export function requireChangesets(check: ChangesetCheck): void {
  if (check.ok) return;
  const names = check.uncovered.map((p) => shownName(p.name));
  throw new StepError('CHANGESETS_MISSING', `${names.length} changed package(s) have no changeset: ${names.join(', ')}`, {
    details: check.uncovered.flatMap((p) => [`${shownName(p.name)} (${shownName(p.path)}): ${p.files.length} changed file(s)`, ...p.files.slice(0, 5).map((f) => `  ${shownName(f)}`), ...(p.files.length > 5 ? [`  … and ${p.files.length - 5} more`] : [])]),
    hint: `run \`npx changeset\` on this branch, select ${names.join(', ')}, and commit the .changeset/*.md file it writes (choose "none" for a change that needs no release); or opt a package out in the release policy with changesets.exempt: [${names.join(', ')}], or its paths with changesets.ignore`,
  });
}

function mdCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/[\r\n\u2028\u2029]/g, ' ');
}

/** A markdown summary of the check (for the job summary or a pull request comment). */
export function renderChangesetSummary(check: ChangesetCheck): string {
  const lines = [`## Changesets: ${check.ok ? 'every changed package has one' : `${check.uncovered.length} package(s) need a changeset`}`, ''];
  lines.push(`Compared \`${mdCell(check.head.ref)}\` (${check.head.commit.slice(0, 12)}) with \`${mdCell(check.base.ref)}\` from their merge base ${check.mergeBase.slice(0, 12)}.`, '');
  const rows = [
    ...check.uncovered.map((p) => ({ p, status: '❌ missing' })),
    ...check.covered.map((p) => ({ p, status: '✅ covered' })),
    ...check.exempt.map((p) => ({ p, status: '➖ exempt' })),
  ];
  if (rows.length) {
    lines.push('| Package | Folder | Changed files | Changesets | Status |', '| --- | --- | ---: | --- | --- |');
    for (const { p, status } of rows) {
      const cs = p.changesets.map((c) => `\`${mdCell(c.file)}\` (${c.type})`).join(', ') || '—';
      lines.push(`| \`${mdCell(p.name)}\` | \`${mdCell(p.path)}\` | ${p.files.length} | ${cs} | ${status} |`);
    }
    lines.push('');
  } else lines.push('No releasable package changed.', '');
  if (check.ignoredFiles.length) lines.push(`${check.ignoredFiles.length} changed file(s) matched changesets.ignore.`, '');
  if (!check.ok) {
    lines.push(
      `To fix: run \`npx changeset\`, select ${check.uncovered.map((p) => `\`${mdCell(p.name)}\``).join(', ')}, and commit the file it writes under \`.changeset/\`. ` +
        'A package that never needs one can be opted out with `changesets.exempt` in the release policy.',
      '',
    );
  }
  return lines.join('\n');
}
