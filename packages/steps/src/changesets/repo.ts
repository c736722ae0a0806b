import { realpath } from 'node:fs/promises';
import path from 'node:path';
import parseChangesetFile from '@changesets/parse';
import { isMap, LineCounter, parseDocument, parse as parseYaml } from 'yaml';
import type { Deps, ExecResult } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import type { Policy } from '../policy.js';

/** The folder changesets keeps its config and pending changeset files in. */
export const CHANGESET_DIR = '.changeset';

export const BUMP_TYPES = ['major', 'minor', 'patch', 'none'] as const;
export type BumpType = (typeof BUMP_TYPES)[number];

export interface Changeset {
  /** Path relative to the repository root, e.g. `.changeset/brave-cats-sing.md`. */
  file: string;
  releases: Array<{ name: string; type: BumpType; line: number }>;
  summary: string;
}

export interface WorkspacePackage {
  name: string;
  /** Folder relative to the repository root, `.` for the root. */
  path: string;
  version: string | undefined;
}

export async function git(deps: Deps, cwd: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; maxBuffer?: number } = {}): Promise<ExecResult> {
  return deps.exec('git', args, {
    cwd,
    env: options.env ?? deps.env,
    timeoutMs: 120_000,
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.maxBuffer === undefined ? {} : { maxBuffer: options.maxBuffer }),
  });
}

/** The most text read from one committed file (a changeset, a package.json): far more than either ever holds. */
export const MAX_FILE_CHARS = 4 * 1024 * 1024;
/** The most text of a file listing (git diff --name-only): some hundred thousand paths. */
export const MAX_LISTING_CHARS = 64 * 1024 * 1024;

/**
 * Output that has to be whole. exec keeps only the tail of a longer output, which would make a
 * cut-off file or listing look complete: past the limit this is a coded error instead.
 */
export function requireWhole(r: ExecResult, max: number, what: string): ExecResult {
  if (r.exitCode === 0 && r.stdout.length > max) {
    throw new StepError('CHANGESETS_INPUT_TOO_LARGE', `${what} is more than ${max} characters, more than check-changesets reads`, {
      hint: 'a changeset or package.json that large is not one; remove the file from the pull request (or split a change of that many files into several pull requests)',
    });
  }
  return r;
}

export function outputTail(r: ExecResult, n = 8): string[] {
  return `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-n);
}

/** A NUL-separated git listing as an array. */
export function splitNul(text: string): string[] {
  return text.split('\0').filter((s) => s !== '');
}

/**
 * Requires `repoRoot` to be the top folder of a git work tree: changesets, package folders and
 * policy paths are all relative to it.
 */
export async function requireRepoRoot(deps: Deps, repoRoot: string, command: string): Promise<void> {
  const top = await git(deps, repoRoot, ['rev-parse', '--show-toplevel']).catch(() => undefined);
  if (!top || top.exitCode !== 0) {
    throw new StepError('CHANGESETS_NOT_GIT', `${repoRoot} is not inside a git repository`, { hint: `run mcp-release ${command} in a clone of the repository` });
  }
  const [a, b] = await Promise.all([realpath(top.stdout.trim()), realpath(repoRoot)]);
  if (a !== b) {
    throw new StepError('CHANGESETS_NOT_REPO_ROOT', `${repoRoot} is not the top folder of its git repository (${a})`, {
      hint: `run mcp-release ${command} from the repository root, where .changeset/ and the release policy are`,
    });
  }
}

/** A file's text at a revision, or undefined when the revision has no such file. */
export async function fileAt(deps: Deps, repoRoot: string, rev: string, file: string): Promise<string | undefined> {
  const r = requireWhole(await git(deps, repoRoot, ['show', `${rev}:${file}`], { maxBuffer: MAX_FILE_CHARS + 1 }), MAX_FILE_CHARS, `${shownName(file)} at ${rev}`);
  return r.exitCode === 0 ? r.stdout : undefined;
}

/** The files of a revision that match git pathspecs (`:(glob)…` magic and exclusions work). */
export async function filesAt(deps: Deps, repoRoot: string, rev: string, pathspecs: string[]): Promise<string[]> {
  const empty = await git(deps, repoRoot, ['hash-object', '-t', 'tree', '--stdin'], { input: '' });
  const r = requireWhole(await git(deps, repoRoot, ['diff', '--name-only', '-z', '--no-renames', empty.stdout.trim(), rev, '--', ...pathspecs], { maxBuffer: MAX_LISTING_CHARS + 1 }), MAX_LISTING_CHARS, `the list of files of ${rev}`);
  if (empty.exitCode !== 0 || r.exitCode !== 0) {
    throw new StepError('CHANGESETS_GIT_FAILED', `git cannot list the files of ${rev} matching ${pathspecs.join(' ')}`, {
      details: outputTail(r),
      hint: 'check the patterns (workspaces in package.json, changesets.ignore in the release policy) and that the revision exists',
    });
  }
  return splitNul(r.stdout);
}

function relFolder(p: string): string {
  const n = path.posix.normalize(p.split(path.sep).join('/')).replace(/\/+$/, '');
  return n === '' ? '.' : n;
}

function manifestPath(folder: string): string {
  return folder === '.' ? 'package.json' : `${folder}/package.json`;
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    throw new Error('not a JSON object');
  } catch (err) {
    throw new StepError('CHANGESETS_PACKAGE_UNREADABLE', `${what} is not a valid package.json: ${(err as Error).message}`, {
      cause: err,
      hint: `fix the JSON in ${what}`,
    });
  }
}

function workspacePatterns(root: Record<string, unknown> | undefined, pnpm: string | undefined): string[] {
  const ws = root?.workspaces;
  const list: unknown[] = Array.isArray(ws) ? ws : ws && typeof ws === 'object' && Array.isArray((ws as { packages?: unknown }).packages) ? (ws as { packages: unknown[] }).packages : [];
  if (pnpm) {
    const doc = parseYaml(pnpm) as { packages?: unknown } | null;
    if (Array.isArray(doc?.packages)) list.push(...doc.packages);
  }
  return list.filter((p): p is string => typeof p === 'string' && p.trim() !== '');
}

/**
 * The packages of the workspace at a revision, as changesets sees them: the packages that the
 * root package.json `workspaces` (or pnpm-workspace.yaml) names, or the root package alone in a
 * single-package repository; plus every package the release policy lists. Keyed by name.
 */
export async function workspaceAt(deps: Deps, repoRoot: string, rev: string, policy: Policy): Promise<Map<string, WorkspacePackage>> {
  const out = new Map<string, WorkspacePackage>();
  const add = (folder: string, pkg: Record<string, unknown>, file: string, required: boolean): void => {
    const name = typeof pkg.name === 'string' ? pkg.name : undefined;
    if (!name) {
      if (!required) return;
      throw new StepError('CHANGESETS_PACKAGE_UNREADABLE', `${file} at ${rev} has no name`, { hint: `give the package in ${folder} a name` });
    }
    out.set(name, { name, path: folder, version: typeof pkg.version === 'string' ? pkg.version : undefined });
  };
  const rootText = await fileAt(deps, repoRoot, rev, 'package.json');
  const root = rootText === undefined ? undefined : parseJson(rootText, 'package.json');
  const patterns = workspacePatterns(root, await fileAt(deps, repoRoot, rev, 'pnpm-workspace.yaml'));
  if (patterns.length) {
    const specs = patterns.map((p) => (p.startsWith('!') ? `:(exclude,glob)${relFolder(p.slice(1))}/package.json` : `:(glob)${relFolder(p)}/package.json`));
    if (!specs.some((s) => s.startsWith(':(glob)'))) specs.unshift(':(glob)**/package.json');
    for (const file of await filesAt(deps, repoRoot, rev, specs)) {
      if (file === 'package.json' || file.split('/').includes('node_modules')) continue;
      add(relFolder(path.posix.dirname(file)), parseJson((await fileAt(deps, repoRoot, rev, file)) ?? '', file), file, false);
    }
  } else if (root) add('.', root, 'package.json', false);
  for (const p of policy.packages) {
    const folder = relFolder(p.path);
    const file = manifestPath(folder);
    const text = await fileAt(deps, repoRoot, rev, file);
    if (text === undefined) {
      throw new StepError('CHANGESETS_PACKAGE_UNREADABLE', `the release policy lists ${p.path}, but ${file} does not exist at ${rev}`, {
        hint: 'fix the package path under `packages:` in the release policy',
      });
    }
    add(folder, parseJson(text, file), file, true);
  }
  return out;
}

/** The releasable packages (the policy's), in policy order, with the folder each owns. */
export function releasablePackages(policy: Policy, workspace: Map<string, WorkspacePackage>): WorkspacePackage[] {
  const all = [...workspace.values()];
  return policy.packages.map((p) => all.find((w) => w.path === relFolder(p.path)) as WorkspacePackage);
}

/** Which of `packages` owns a file: the one with the longest matching folder. */
export function owningPackage<P extends { path: string }>(file: string, packages: P[]): P | undefined {
  let best: P | undefined;
  for (const p of packages) {
    const inside = p.path === '.' || file === p.path || file.startsWith(`${p.path}/`);
    if (inside && (!best || best.path === '.' || p.path.length > best.path.length)) best = p;
  }
  return best;
}

/** Whether a path is a changeset file (`.changeset/*.md`, README.md excepted). */
export function isChangesetFile(file: string): boolean {
  const dir = path.posix.dirname(file);
  const base = path.posix.basename(file);
  return dir === CHANGESET_DIR && base.endsWith('.md') && base !== 'README.md';
}

/** The changeset files present at a revision. */
export async function changesetFilesAt(deps: Deps, repoRoot: string, rev: string): Promise<string[]> {
  const r = requireWhole(await git(deps, repoRoot, ['ls-tree', '-z', rev, `${CHANGESET_DIR}/`], { maxBuffer: MAX_LISTING_CHARS + 1 }), MAX_LISTING_CHARS, `the list of ${CHANGESET_DIR}/ at ${rev}`);
  if (r.exitCode !== 0) {
    throw new StepError('CHANGESETS_GIT_FAILED', `git cannot list ${CHANGESET_DIR}/ at ${rev}`, { details: outputTail(r), hint: 'check that the revision exists (git fetch)' });
  }
  return splitNul(r.stdout)
    .map((entry) => /^\d+ blob [0-9a-f]+\t(.+)$/s.exec(entry)?.[1])
    .filter((f): f is string => f !== undefined && isChangesetFile(f))
    .sort();
}

const FRONT_MATTER = /\s*---([^]*?)\n\s*---(\s*(?:\n|$)[^]*)/d;

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i += 1) if (text.charCodeAt(i) === 10) line += 1;
  return line;
}

/** Where in a changeset file a parse error lies: the YAML error, the offending entry, or the front matter. */
function locateProblem(text: string): number {
  const m = FRONT_MATTER.exec(text);
  const start = m?.indices?.[1]?.[0];
  if (!m || start === undefined) return lineOf(text, text.length - text.trimStart().length);
  const front = m[1] ?? '';
  const counter = new LineCounter();
  const doc = parseDocument(front, { lineCounter: counter, uniqueKeys: true });
  const base = lineOf(text, start) - 1;
  const yamlError = doc.errors[0];
  if (yamlError) return base + (yamlError.linePos?.[0].line ?? 1);
  const contents = doc.contents as {
    range?: [number, number, number];
    items?: Array<{ key?: { range?: [number, number, number]; value?: unknown }; value?: { value?: unknown } | null }>;
  } | null;
  for (const item of isMap(contents) ? (contents.items ?? []) : []) {
    const type = item.value?.value;
    if (typeof type !== 'string' || !(BUMP_TYPES as readonly string[]).includes(type) || typeof item.key?.value !== 'string' || !item.key.value.trim()) {
      return base + counter.linePos(item.key?.range?.[0] ?? 0).line;
    }
  }
  return base + (contents?.range ? counter.linePos(contents.range[0]).line : 1);
}

/** Where a package's entry is in a changeset's front matter (for messages). */
function entryLine(text: string, name: string): number {
  const m = FRONT_MATTER.exec(text);
  const start = m?.indices?.[1]?.[0];
  if (!m || start === undefined) return 1;
  const counter = new LineCounter();
  const doc = parseDocument(m[1] ?? '', { lineCounter: counter });
  const items = (doc.contents as { items?: Array<{ key?: { range?: [number, number, number]; value?: unknown } }> } | null)?.items ?? [];
  const hit = items.find((i) => String(i.key?.value) === name);
  return lineOf(text, start) - 1 + (hit?.key?.range ? counter.linePos(hit.key.range[0]).line : 1);
}

export interface ChangesetProblem {
  file: string;
  line: number;
  message: string;
}

/**
 * Parses one changeset file with changesets' own parser. A file it refuses is returned as a
 * problem located at the line at fault (bad front matter, bad YAML, an unknown bump type).
 */
export function parseChangeset(file: string, text: string): Changeset | ChangesetProblem {
  try {
    const parsed = parseChangesetFile(text);
    return {
      file,
      releases: parsed.releases.map((r) => ({ name: r.name, type: r.type as BumpType, line: entryLine(text, r.name) })),
      summary: parsed.summary,
    };
  } catch (err) {
    const message = (err as Error).message
      .split(/[\r\n\u2028\u2029]/)
      .slice(0, 2)
      .join(' ')
      .replace(/^could not parse changeset - /, '')
      .replace(/\p{Cc}/gu, ' ');
    return { file, line: locateProblem(text), message };
  }
}

/**
 * A file or package name as it goes into a message: quoted when it holds a line break or another
 * control character. A pull request chooses these names, and check-changesets prints them in a CI
 * log, where a line of its own starting with `::` would be taken for a workflow command.
 */
export function shownName(name: string): string {
  return /[\p{Cc}\u2028\u2029]/u.test(name) ? JSON.stringify(name) : name;
}

function isProblem(c: Changeset | ChangesetProblem): c is ChangesetProblem {
  return 'message' in c;
}

/**
 * Reads and checks every changeset at a revision: each must parse, and each package it names
 * must be in the workspace. Throws one coded error listing every bad file with its line.
 */
export async function readChangesets(deps: Deps, repoRoot: string, rev: string, workspace: Map<string, WorkspacePackage>): Promise<Changeset[]> {
  const parsed: Array<Changeset | ChangesetProblem> = [];
  for (const file of await changesetFilesAt(deps, repoRoot, rev)) parsed.push(parseChangeset(file, (await fileAt(deps, repoRoot, rev, file)) ?? ''));
  const problems = parsed.filter(isProblem);
  if (problems.length) {
    const [first] = problems as [ChangesetProblem];
    throw new StepError('CHANGESET_MALFORMED', `${shownName(first.file)}:${first.line}: ${first.message}`, {
      details: problems.map((p) => `${shownName(p.file)}:${p.line}: ${p.message}`),
      hint: `a changeset starts with front matter between --- lines mapping package names to a bump type (${BUMP_TYPES.join(', ')}), e.g. "my-package": patch; fix the file at that line, or delete it and run \`npx changeset\` again`,
    });
  }
  const changesets = parsed as Changeset[];
  const unknown = changesets.flatMap((c) => c.releases.filter((r) => !workspace.has(r.name)).map((r) => ({ file: c.file, line: r.line, name: r.name })));
  if (unknown.length) {
    const [first] = unknown as [(typeof unknown)[number]];
    throw new StepError('CHANGESET_UNKNOWN_PACKAGE', `${shownName(first.file)}:${first.line}: the changeset names ${shownName(first.name)}, which is not a package of this workspace`, {
      details: [...unknown.map((u) => `${shownName(u.file)}:${u.line}: ${shownName(u.name)}`), `workspace packages: ${[...workspace.keys()].sort().map(shownName).join(', ') || '(none)'}`],
      hint: 'correct the package name in the changeset (the "name" in its package.json), or delete the changeset if the package was removed',
    });
  }
  return changesets;
}
