import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { devNull } from 'node:os';
import path from 'node:path';
import { LabError } from '../errors.js';
import { SHA_RE } from './git.js';
import { now, repoKey, type RefRecord, type RepositoryRecord, type Store, type TagRecord } from './store.js';

/** A ref as a bare repository holds it: what it names, and that object's type. */
export interface RepoRef {
  ref: string;
  sha: string;
  type: string;
}

/** A tag of a repository in the state snapshot. */
export interface RepoTagState {
  name: string;
  /** What `refs/tags/<name>` points at: the tag object when annotated, else the commit. */
  sha: string;
  /** The commit the tag names once peeled; null when it names no commit (a tree or a blob). */
  commit: string | null;
  annotated: boolean;
}

/** A bare repository the stand-in serves over smart HTTP, as of its last change. */
export interface RepositoryState {
  owner: string;
  repo: string;
  /** The bare repository on disk. */
  path: string;
  /** The branch HEAD names (what a clone checks out). */
  defaultBranch: string;
  branches: Array<{ name: string; sha: string }>;
  tags: RepoTagState[];
}

interface Snapshot {
  state: RepositoryState;
  refs: RefRecord[];
  tags: TagRecord[];
}

interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** The refs (one a line) the pre-receive hook protects: tags of immutable releases. */
const PROTECTED_FILE = 'lab-immutable-refs';

/**
 * A pre-receive hook, so that a push cannot move or delete the tag of an immutable release, as
 * GitHub refuses it. git runs it in the bare repository with each update on a line of its input.
 */
const PRE_RECEIVE = `#!/bin/sh
# Written by the release lab: the tags of immutable releases cannot be moved or deleted.
list="\${GIT_DIR:-.}/${PROTECTED_FILE}"
[ -f "$list" ] || exit 0
refused=0
while read -r old new ref; do
  if [ "$old" != "$new" ] && grep -qxF -- "$ref" "$list"; then
    echo "$ref is the tag of an immutable release; it cannot be moved or deleted" >&2
    refused=1
  fi
done
exit $refused
`;

const OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO_RE = /^[A-Za-z0-9._-]{1,100}$/;

export function validOwner(owner: string): boolean {
  return OWNER_RE.test(owner);
}

/** A repository name as GitHub takes it (without the `.git` a URL may add). */
export function validRepo(repo: string): boolean {
  return REPO_RE.test(repo) && repo !== '.' && repo !== '..' && !repo.toLowerCase().endsWith('.git');
}

/**
 * The environment of every git the stand-in runs: no system or user configuration, no prompts,
 * and none of the caller's GIT_* settings (a GIT_DIR from a hook would point git elsewhere).
 */
export function gitChildEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C',
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: devNull,
    GIT_TERMINAL_PROMPT: '0',
    ...extra,
  };
}

/** The git command of an argument list, past `--git-dir X` and `-C X`. */
function subcommand(args: string[]): string {
  let i = 0;
  while (args[i] === '--git-dir' || args[i] === '-C') i += 2;
  return args[i] ?? '';
}

/**
 * Runs git without blocking the event loop (the stand-in serves requests in the same process) and
 * collects its output. Exit codes other than 0 and those in `allow` are a LabError with git's words.
 */
export function runGit(args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string; input?: string; allow?: number[]; track?: Set<ChildProcess> }): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    options.track?.add(child);
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      if (err.length < 64 * 1024) err += c.toString('utf8');
    });
    child.stdin.on('error', () => undefined); // git may exit before reading all of its input
    child.on('error', (e: NodeJS.ErrnoException) => {
      options.track?.delete(child);
      reject(new LabError('LAB_GITHUB_GIT', `could not run git ${subcommand(args)}: ${e.message}`, { cause: e, hint: e.code === 'ENOENT' ? 'install git and put it on PATH' : 'check that git runs on this machine' }));
    });
    child.on('close', (code, signal) => {
      options.track?.delete(child);
      const result = { code: code ?? -1, stdout: Buffer.concat(out), stderr: err.trim() };
      if (code === 0 || (code !== null && options.allow?.includes(code))) resolve(result);
      else {
        reject(
          new LabError('LAB_GITHUB_GIT', `git ${subcommand(args)} failed (${signal ?? `exit ${code}`}): ${result.stderr || 'no message'}`, {
            hint: 'read the message of git above; a repository in the state folder of the stand-in may be damaged',
          }),
        );
      }
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Parses `git cat-file tag` output into the shape the REST API reports. */
export function parseTagObject(owner: string, repo: string, sha: string, text: string): TagRecord {
  const cut = text.indexOf('\n\n');
  const head = cut < 0 ? text : text.slice(0, cut);
  const message = cut < 0 ? '' : text.slice(cut + 2);
  const fields = new Map<string, string>();
  for (const line of head.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0 && !fields.has(line.slice(0, sp))) fields.set(line.slice(0, sp), line.slice(sp + 1));
  }
  const tagger = /^(.*?) <([^>]*)> (\d+) [+-]\d{4}$/.exec(fields.get('tagger') ?? '');
  return {
    owner,
    repo,
    sha,
    tag: fields.get('tag') ?? '',
    message,
    object: { sha: fields.get('object') ?? '', type: fields.get('type') ?? '' },
    tagger: tagger
      ? { name: tagger[1] as string, email: tagger[2] as string, date: new Date(Number(tagger[3]) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') }
      : { name: '', email: '', date: '' },
  };
}

/**
 * The bare repositories of the stand-in, one per owner/repo, under `<state>/repos/<owner>/<repo>.git`
 * (lowercased: GitHub's names are case-insensitive). Their refs and tag objects are the truth the
 * REST API reads and writes for those repositories. A snapshot of each, refreshed after every
 * change made through the stand-in, serves the synchronous `state()`.
 */
export class Repositories {
  readonly root: string;
  private readonly store: Store;
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly refreshing = new Map<string, Promise<void>>();
  private readonly creating = new Map<string, Promise<unknown>>();
  /** Every git child running for the stand-in; stop() ends them. */
  readonly children = new Set<ChildProcess>();

  private constructor(root: string, store: Store) {
    this.root = root;
    this.store = store;
  }

  static async open(dir: string, store: Store): Promise<Repositories> {
    const repos = new Repositories(path.join(dir, 'repos'), store);
    try {
      await mkdir(repos.root, { recursive: true });
      // a repository whose creation was cut off leaves its temporary folder behind
      for (const owner of await readdir(repos.root)) {
        for (const name of await readdir(path.join(repos.root, owner)).catch(() => [] as string[])) {
          if (name.endsWith('.tmp')) await rm(path.join(repos.root, owner, name), { recursive: true, force: true });
        }
      }
      for (const r of store.repositories) {
        if (!existsSync(path.join(repos.dirOf(r.owner, r.repo), 'HEAD'))) throw new Error(`the bare repository of ${r.owner}/${r.repo} is missing from ${repos.dirOf(r.owner, r.repo)}`);
      }
    } catch (err) {
      throw new LabError('LAB_GITHUB_STATE', `could not load the stand-in's git repositories from ${repos.root}`, { cause: err, hint: 'remove the state folder to start from an empty state, or give another stateDir' });
    }
    for (const r of store.repositories) await repos.refresh(r.owner, r.repo);
    return repos;
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return gitChildEnv(this.root, extra);
  }

  /** `<owner>/<repo>.git`, relative to the root: the PATH_INFO prefix of git http-backend. */
  relative(owner: string, repo: string): string {
    return `${owner.toLowerCase()}/${repo.toLowerCase()}.git`;
  }

  dirOf(owner: string, repo: string): string {
    return path.join(this.root, owner.toLowerCase(), `${repo.toLowerCase()}.git`);
  }

  find(owner: string, repo: string): RepositoryRecord | undefined {
    const key = repoKey(owner, repo);
    return this.store.repositories.find((r) => repoKey(r.owner, r.repo) === key);
  }

  private git(owner: string, repo: string, args: string[], options: { input?: string; allow?: number[] } = {}): Promise<GitResult> {
    return runGit(['--git-dir', this.dirOf(owner, repo), ...args], { env: this.env(), track: this.children, ...options });
  }

  private checkNames(owner: string, repo: string, branch: string): void {
    if (!validOwner(owner)) throw new LabError('LAB_GITHUB_REPO_NAME', `${JSON.stringify(owner)} is not a GitHub owner name`, { hint: 'use letters, digits and single hyphens, at most 39 characters, e.g. "acme"' });
    if (!validRepo(repo)) throw new LabError('LAB_GITHUB_REPO_NAME', `${JSON.stringify(repo)} is not a GitHub repository name`, { hint: 'use letters, digits, ".", "-" and "_" without a ".git" ending, e.g. "widget"' });
    if (!branch || branch.startsWith('-') || /[\s~^:?*[\\]|\.\.|@\{|\/\/|\.lock$|^\/|\/$|\.$/.test(branch)) {
      throw new LabError('LAB_GITHUB_REPO_NAME', `${JSON.stringify(branch)} is not a valid branch name`, { hint: 'give a branch such as "main"' });
    }
  }

  /**
   * Creates the bare repository (HEAD on `branch`, no commits) unless it exists; then runs `fill`
   * on it. A new repository is built in a temporary folder and renamed into place only once
   * `fill` succeeded, so a failure leaves no repository behind.
   */
  private ensure(owner: string, repo: string, branch: string, fill: (gitDir: string) => Promise<void>): Promise<RepositoryRecord> {
    this.checkNames(owner, repo, branch);
    // one creation or seeding of a repository at a time
    const key = repoKey(owner, repo);
    const next = (this.creating.get(key) ?? Promise.resolve()).then(() => this.ensureNow(owner, repo, branch, fill));
    this.creating.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  }

  private async installHook(gitDir: string): Promise<void> {
    const hook = path.join(gitDir, 'hooks', 'pre-receive');
    await mkdir(path.dirname(hook), { recursive: true });
    await writeFile(hook, PRE_RECEIVE);
    await chmod(hook, 0o755);
  }

  private async ensureNow(owner: string, repo: string, branch: string, fill: (gitDir: string) => Promise<void>): Promise<RepositoryRecord> {
    const dir = this.dirOf(owner, repo);
    const existing = this.find(owner, repo);
    if (existing && existsSync(path.join(dir, 'HEAD'))) {
      await this.installHook(dir);
      await fill(dir);
      await runGit(['--git-dir', dir, 'symbolic-ref', 'HEAD', `refs/heads/${branch}`], { env: this.env(), track: this.children });
      existing.default_branch = branch;
    } else {
      await mkdir(path.dirname(dir), { recursive: true });
      const tmp = `${dir}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await runGit(['init', '--quiet', '--bare', `--initial-branch=${branch}`, tmp], { env: this.env(), track: this.children });
        await this.installHook(tmp);
        await fill(tmp);
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir);
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
      if (existing) existing.default_branch = branch;
      else this.store.repositories.push({ owner, repo, default_branch: branch, created_at: now() });
    }
    await this.store.save();
    await this.refresh(owner, repo);
    return this.find(owner, repo) as RepositoryRecord;
  }

  /** An empty repository (no commits yet), as `gh repo create` makes; an existing one is kept as is. */
  async create(owner: string, repo: string, branch: string): Promise<RepositoryRecord> {
    return this.find(owner, repo) ?? this.ensure(owner, repo, branch, async () => undefined);
  }

  /**
   * Creates or refreshes the repository from a local one: `ref` (HEAD by default) becomes
   * `refs/heads/<branch>` (forced, so a refresh may rewind it), HEAD names that branch, and with
   * `tags` every local tag is copied too.
   */
  async seed(owner: string, repo: string, from: string, options: { branch: string; ref: string; tags: boolean }): Promise<RepositoryRecord> {
    this.checkNames(owner, repo, options.branch);
    let commit: string;
    try {
      commit = (await runGit(['-C', path.resolve(from), 'rev-parse', '--verify', '--quiet', '--end-of-options', `${options.ref}^{commit}`], { env: this.env(), track: this.children })).stdout.toString('utf8').trim();
    } catch (err) {
      throw new LabError('LAB_GITHUB_SEED', `${from} is not a git repository with a commit at ${options.ref}`, { cause: err, hint: 'seed from a git work tree or bare repository that has at least one commit, or give another ref' });
    }
    return this.ensure(owner, repo, options.branch, async (gitDir) => {
      const specs = [`+${commit}:refs/heads/${options.branch}`, ...(options.tags ? ['+refs/tags/*:refs/tags/*'] : [])];
      try {
        await runGit(['-C', path.resolve(from), 'push', '--quiet', '--no-verify', gitDir, ...specs], { env: this.env(), track: this.children });
      } catch (err) {
        throw new LabError('LAB_GITHUB_SEED', `could not copy ${from} into the stand-in's repository ${owner}/${repo}`, { cause: err, hint: 'check that the local repository is readable and the state folder is writable' });
      }
    });
  }

  /** The refs a push may not move or delete (the tags of immutable releases); replaces the list. */
  async protect(owner: string, repo: string, refs: string[]): Promise<void> {
    const file = path.join(this.dirOf(owner, repo), PROTECTED_FILE);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, refs.map((r) => `${r}\n`).join(''));
    await rename(tmp, file);
  }

  /** Every ref of the repository, sorted by name, straight from git. */
  async refs(owner: string, repo: string): Promise<RepoRef[]> {
    return (await this.listRefs(owner, repo)).map(({ ref, sha, type }) => ({ ref, sha, type }));
  }

  private async listRefs(owner: string, repo: string): Promise<Array<RepoRef & { peeled: string; peeledType: string }>> {
    const out = await this.git(owner, repo, ['for-each-ref', '--format=%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)', 'refs/']);
    return out.stdout
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [ref = '', sha = '', type = '', peeled = '', peeledType = ''] = line.split('\0');
        return { ref, sha, type, peeled, peeledType };
      })
      .sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  }

  /** The type of an object in the repository, or undefined when it has no such object. */
  async objectType(owner: string, repo: string, sha: string): Promise<string | undefined> {
    if (!SHA_RE.test(sha)) return undefined;
    const out = await this.git(owner, repo, ['cat-file', '-t', sha], { allow: [1, 128] });
    return out.code === 0 ? out.stdout.toString('utf8').trim() : undefined;
  }

  /** A tag object, read with `git cat-file`; undefined when `sha` names no tag object. */
  async tagObject(owner: string, repo: string, sha: string): Promise<TagRecord | undefined> {
    if ((await this.objectType(owner, repo, sha)) !== 'tag') return undefined;
    const out = await this.git(owner, repo, ['cat-file', 'tag', sha]);
    return parseTagObject(owner, repo, sha, out.stdout.toString('utf8'));
  }

  /** Writes a tag object with `git mktag` (which checks that the tagged object exists with that type). */
  async writeTag(owner: string, repo: string, text: string): Promise<string> {
    const out = await this.git(owner, repo, ['mktag'], { input: text });
    return out.stdout.toString('utf8').trim();
  }

  /** The commit a branch, tag or commit id names in the repository, or undefined. */
  async resolveCommit(owner: string, repo: string, commitish: string): Promise<string | undefined> {
    const candidates = SHA_RE.test(commitish) ? [commitish] : [`refs/heads/${commitish}`, `refs/tags/${commitish}`];
    for (const c of candidates) {
      const out = await this.git(owner, repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${c}^{commit}`], { allow: [1, 128] });
      if (out.code === 0) return out.stdout.toString('utf8').trim();
    }
    return undefined;
  }

  /** Whether commit `a` is an ancestor of (or equal to) commit `b`. */
  async isAncestor(owner: string, repo: string, a: string, b: string): Promise<boolean> {
    return (await this.git(owner, repo, ['merge-base', '--is-ancestor', a, b], { allow: [1] })).code === 0;
  }

  /**
   * Sets a ref with `git update-ref`, only if it still holds `old` (all zeros: only if it does not
   * exist); `sha` undefined deletes it. False when the ref had moved or git refused the object.
   */
  async updateRef(owner: string, repo: string, ref: string, sha: string | undefined, old: string): Promise<boolean> {
    const args = sha === undefined ? ['update-ref', '--no-deref', '-d', ref, old] : ['update-ref', '--no-deref', ref, sha, old];
    const out = await this.git(owner, repo, args, { allow: [1, 128] });
    await this.refresh(owner, repo);
    return out.code === 0;
  }

  /** Reads the repository again for `state()`; calls for one repository run one after another. */
  refresh(owner: string, repo: string): Promise<void> {
    const key = repoKey(owner, repo);
    const next = (this.refreshing.get(key) ?? Promise.resolve()).then(() => this.read(owner, repo));
    this.refreshing.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  }

  private async read(owner: string, repo: string): Promise<void> {
    const record = this.find(owner, repo);
    if (!record) return;
    const refs = await this.listRefs(owner, repo);
    const head = await this.git(owner, repo, ['symbolic-ref', '--quiet', 'HEAD'], { allow: [1] });
    const tagShas = [...new Set(refs.filter((r) => r.type === 'tag').map((r) => r.sha))];
    const tags: TagRecord[] = [];
    for (const sha of tagShas) {
      const t = await this.tagObject(owner, repo, sha);
      if (t) tags.push({ ...t, owner: record.owner, repo: record.repo });
    }
    const repoTags: RepoTagState[] = [];
    for (const r of refs.filter((x) => x.ref.startsWith('refs/tags/'))) {
      let commit: string | null = r.type === 'commit' ? r.sha : r.peeledType === 'commit' ? r.peeled : null;
      if (r.type === 'tag' && r.peeledType === 'tag') commit = (await this.resolveCommit(owner, repo, r.sha)) ?? null;
      repoTags.push({ name: r.ref.slice('refs/tags/'.length), sha: r.sha, commit, annotated: r.type === 'tag' });
    }
    this.snapshots.set(repoKey(owner, repo), {
      state: {
        owner: record.owner,
        repo: record.repo,
        path: this.dirOf(owner, repo),
        defaultBranch: head.code === 0 ? head.stdout.toString('utf8').trim().replace(/^refs\/heads\//, '') : record.default_branch,
        branches: refs.filter((r) => r.ref.startsWith('refs/heads/')).map((r) => ({ name: r.ref.slice('refs/heads/'.length), sha: r.sha })),
        tags: repoTags,
      },
      refs: refs.map((r) => ({ owner: record.owner, repo: record.repo, ref: r.ref, sha: r.sha })),
      tags,
    });
  }

  /** The last snapshot of every repository, in creation order. */
  snapshot(): Snapshot[] {
    return this.store.repositories.map((r) => this.snapshots.get(repoKey(r.owner, r.repo))).filter((s): s is Snapshot => Boolean(s));
  }

  /** Ends every git this stand-in still runs and waits for them. */
  async close(): Promise<void> {
    const running = [...this.children];
    await Promise.all(
      running.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('close', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    await Promise.all([...this.refreshing.values()]);
  }
}
