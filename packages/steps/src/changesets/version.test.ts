import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Deps } from '@mcp-release/pipeline';
import { git } from '../../../../test/helpers/git-repo.js';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import type { Policy } from '../policy.js';
import { findChangesetBin, versionPackages } from './version.js';
import { changeset, commitFiles, makeWorkspace, policyFor, testDeps } from './testing.js';

interface Setup {
  root: string;
  /** The clone being versioned (main, in sync with the remote). */
  dir: string;
  /** A bare repository as the remote (`origin`). */
  remote: string;
  policy: Policy;
}

/** A workspace pushed to a bare remote, with one pending changeset for pkg-a (minor) on main. */
async function setup(opts: { changesets?: Record<string, string>; config?: Record<string, unknown>; linkModules?: boolean } = {}): Promise<Setup> {
  const root = await tempDir();
  const remote = path.join(root, 'remote.git');
  const dir = path.join(root, 'work');
  await mkdir(dir);
  git(root, 'init', '-q', '--bare', '-b', 'main', remote);
  await makeWorkspace(dir, { ...(opts.config ? { config: opts.config } : {}), ...(opts.linkModules === false ? { linkModules: false } : {}) });
  await commitFiles(dir, opts.changesets ?? { '.changeset/brave-cats-sing.md': changeset({ 'pkg-a': 'minor' }, 'Adds the frobnicate option') }, 'Merge feature');
  git(dir, 'remote', 'add', 'origin', remote);
  git(dir, 'push', '-q', 'origin', 'main');
  return { root, dir, remote, policy: policyFor() };
}

/** What a later clone pushes to the remote: someone else's commit. */
function pushFromElsewhere(s: Setup, name: string): string {
  const other = path.join(s.root, name);
  git(s.root, 'clone', '-q', s.remote, other);
  git(other, 'commit', '-q', '--allow-empty', '-m', `work from ${name}`);
  git(other, 'push', '-q', 'origin', 'main');
  return git(other, 'rev-parse', 'HEAD');
}

describe('mcp-release version', () => {
  it('runs changeset version, commits the bumps and the changelog on main and pushes them', async () => {
    const s = await setup();
    const before = git(s.dir, 'rev-parse', 'HEAD');
    const r = await versionPackages({ repoRoot: s.dir, policy: s.policy, deps: testDeps(), push: true });

    expect(r).toMatchObject({ status: 'versioned', branch: 'main', remote: 'origin', base: before, pushed: true, changesets: ['.changeset/brave-cats-sing.md'] });
    expect(r.packages).toEqual([{ name: 'pkg-a', path: 'packages/a', from: '1.0.0', to: '1.1.0' }]);
    const head = git(s.dir, 'rev-parse', 'HEAD');
    expect(r.commit).toBe(head);
    expect(git(s.dir, 'rev-parse', 'HEAD^')).toBe(before);
    expect(git(s.remote, 'rev-parse', 'main')).toBe(head);
    expect(git(s.dir, 'status', '--porcelain')).toBe('');
    expect(git(s.dir, 'log', '-1', '--format=%B')).toMatch(/^Version packages: pkg-a@1\.1\.0\n\npkg-a@1\.1\.0 \(was 1\.0\.0\)\n\nChangesets: brave-cats-sing/);
    // What the remote's main now holds: the bump, the changelog, the changeset consumed.
    expect(JSON.parse(git(s.remote, 'show', 'main:packages/a/package.json')).version).toBe('1.1.0');
    expect(JSON.parse(git(s.remote, 'show', 'main:packages/b/package.json')).version).toBe('2.0.0');
    expect(git(s.remote, 'show', 'main:packages/a/CHANGELOG.md')).toMatch(/## 1\.1\.0\n\n### Minor Changes\n\n- [0-9a-f]{7}: Adds the frobnicate option/);
    expect(git(s.remote, 'ls-tree', '--name-only', 'main', '.changeset/')).toBe('.changeset/README.md\n.changeset/config.json');
  });

  it('leaves the commit local without push, on a remote given as a URL in MCP_RELEASE_GIT_REMOTE', async () => {
    const s = await setup({ changesets: { '.changeset/a.md': changeset({ 'pkg-a': 'major', 'pkg-b': 'patch' }) } });
    git(s.dir, 'remote', 'remove', 'origin');
    const remoteBefore = git(s.remote, 'rev-parse', 'main');
    const r = await versionPackages({ repoRoot: s.dir, policy: s.policy, deps: testDeps({ MCP_RELEASE_GIT_REMOTE: s.remote }), push: false });
    expect(r.pushed).toBe(false);
    expect(r.remote).toBe(s.remote);
    expect(r.packages.map((p) => `${p.name}@${p.to}`)).toEqual(['pkg-a@2.0.0', 'pkg-b@2.0.1']);
    expect(git(s.remote, 'rev-parse', 'main')).toBe(remoteBefore);
    expect(git(s.dir, 'rev-parse', 'HEAD')).toBe(r.commit);
    expect(git(s.dir, 'log', '-1', '--format=%s')).toBe('Version packages: pkg-a@2.0.0, pkg-b@2.0.1');
  });

  it('does nothing when there are no changesets', async () => {
    const s = await setup({ changesets: { 'docs/guide.md': '# Guide v2\n' } });
    const head = git(s.dir, 'rev-parse', 'HEAD');
    const r = await versionPackages({ repoRoot: s.dir, policy: s.policy, deps: testDeps(), push: true });
    expect(r).toMatchObject({ status: 'nothing-to-version', pushed: false, packages: [], changesets: [] });
    expect(r.commit).toBeUndefined();
    expect(git(s.dir, 'rev-parse', 'HEAD')).toBe(head);
    expect(git(s.remote, 'rev-parse', 'main')).toBe(head);
  });

  it('refuses a feature branch, a dirty tree, and a checkout behind or ahead of the remote, each with its fix', async () => {
    const s = await setup();
    const deps = testDeps();
    const run = (): Promise<unknown> => versionPackages({ repoRoot: s.dir, policy: s.policy, deps, push: true });
    const head = git(s.dir, 'rev-parse', 'HEAD');

    git(s.dir, 'switch', '-q', '-c', 'feature');
    expect(await caught(run)).toMatchObject({ code: 'VERSION_NOT_ON_DEFAULT_BRANCH', message: expect.stringContaining('on feature'), hint: expect.stringContaining('git switch main') });
    git(s.dir, 'switch', '-q', 'main');
    git(s.dir, 'switch', '-q', '--detach');
    expect(await caught(run)).toMatchObject({ code: 'VERSION_NOT_ON_DEFAULT_BRANCH', message: expect.stringContaining('detached HEAD') });
    git(s.dir, 'switch', '-q', 'main');

    await writeFile(path.join(s.dir, 'packages/a/index.js'), 'export const a = 99;\n');
    await writeFile(path.join(s.dir, 'scratch.txt'), 'notes\n');
    const dirty = await caught(run);
    expect(dirty).toMatchObject({ code: 'VERSION_DIRTY_TREE', hint: expect.stringContaining('git stash -u') });
    expect(dirty.details).toEqual(['M packages/a/index.js', '?? scratch.txt']);
    git(s.dir, 'checkout', '--', '.');
    git(s.dir, 'clean', '-fdq');

    const theirs = pushFromElsewhere(s, 'other');
    expect(await caught(run)).toMatchObject({ code: 'VERSION_BEHIND_REMOTE', hint: expect.stringContaining('git pull --ff-only origin main') });
    git(s.dir, 'pull', '-q', '--ff-only', 'origin', 'main');
    expect(git(s.dir, 'rev-parse', 'HEAD')).toBe(theirs);

    git(s.dir, 'commit', '-q', '--allow-empty', '-m', 'local only');
    expect(await caught(run)).toMatchObject({ code: 'VERSION_AHEAD_OF_REMOTE', hint: expect.stringContaining('pull request') });

    // Nothing was versioned by any of the refusals.
    expect(existsSync(path.join(s.dir, '.changeset/brave-cats-sing.md'))).toBe(true);
    expect(JSON.parse(await readFile(path.join(s.dir, 'packages/a/package.json'), 'utf8')).version).toBe('1.0.0');
    expect(git(s.remote, 'rev-parse', 'main')).toBe(theirs);
    expect(git(s.remote, 'merge-base', '--is-ancestor', head, 'main')).toBe('');
  });

  it('explains a push that someone else beat, and undoes the local version commit', async () => {
    const s = await setup();
    const head = git(s.dir, 'rev-parse', 'HEAD');
    const deps = testDeps();
    let theirs = '';
    // The fault: another push lands on main while changeset version runs (after the fetch).
    const racing: Deps = {
      ...deps,
      exec: async (command, args, options) => {
        if (command === process.execPath && args[1] === 'version') theirs = pushFromElsewhere(s, 'racer');
        return deps.exec(command, args, options);
      },
    };
    const err = await caught(() => versionPackages({ repoRoot: s.dir, policy: s.policy, deps: racing, push: true }));
    expect(err.code).toBe('VERSION_PUSH_REJECTED');
    expect(err.message).toMatch(/^someone pushed to main on origin first, so the push was rejected; the version commit [0-9a-f]{12} was not pushed and has been undone here \(main is back at [0-9a-f]{12}, the changesets are pending again\)$/);
    expect(err.message).toContain(head.slice(0, 12));
    expect(err.hint).toMatch(/^pull the new commits \(git pull --ff-only origin main\) and run mcp-release version again/);
    expect(git(s.remote, 'rev-parse', 'main')).toBe(theirs);
    expect(git(s.dir, 'rev-parse', 'HEAD')).toBe(head);
    expect(git(s.dir, 'status', '--porcelain')).toBe('');
    expect(existsSync(path.join(s.dir, '.changeset/brave-cats-sing.md'))).toBe(true);

    // Following the hint works.
    git(s.dir, 'pull', '-q', '--ff-only', 'origin', 'main');
    const again = await versionPackages({ repoRoot: s.dir, policy: s.policy, deps, push: true });
    expect(again).toMatchObject({ status: 'versioned', pushed: true, base: theirs });
    expect(git(s.remote, 'rev-parse', 'main')).toBe(again.commit);
  });

  it('puts the checkout back when changeset version fails, and refuses bad changesets before running it', async () => {
    const s = await setup({ config: { changelog: './no-such-changelog.cjs' } });
    const head = git(s.dir, 'rev-parse', 'HEAD');
    const err = await caught(() => versionPackages({ repoRoot: s.dir, policy: s.policy, deps: testDeps(), push: true }));
    expect(err).toMatchObject({ code: 'VERSION_CHANGESET_FAILED', message: expect.stringContaining('the checkout was put back as it was') });
    expect(err.details?.join('\n')).toMatch(/no-such-changelog/);
    expect(git(s.dir, 'rev-parse', 'HEAD')).toBe(head);
    expect(git(s.dir, 'status', '--porcelain')).toBe('');
    expect(git(s.remote, 'rev-parse', 'main')).toBe(head);

    const bad = await setup({ changesets: { '.changeset/oops.md': '---\n"pkg-a": minr\n---\n\nx\n' } });
    expect(await caught(() => versionPackages({ repoRoot: bad.dir, policy: bad.policy, deps: testDeps(), push: true }))).toMatchObject({
      code: 'CHANGESET_MALFORMED',
      message: expect.stringMatching(/^\.changeset\/oops\.md:2: invalid version type "minr"/),
    });
  });

  it('asks for @changesets/cli when the repository has not installed it, and refuses a config that commits by itself', async () => {
    const s = await setup({ linkModules: false });
    const err = await caught(() => versionPackages({ repoRoot: s.dir, policy: s.policy, deps: testDeps(), push: true }));
    expect(err).toMatchObject({ code: 'VERSION_CHANGESETS_CLI_MISSING', hint: expect.stringContaining('npm install --save-dev @changesets/cli') });
    expect(git(s.dir, 'status', '--porcelain')).toBe('');

    const c = await setup({ config: { commit: true } });
    expect(await caught(() => versionPackages({ repoRoot: c.dir, policy: c.policy, deps: testDeps(), push: true }))).toMatchObject({
      code: 'VERSION_CHANGESETS_COMMITS',
      hint: expect.stringContaining('"commit": false'),
    });
    // The binary is found from a subfolder too (node_modules above the repository root).
    expect(await findChangesetBin(path.join(c.dir, 'packages/a'))).toBe(path.join(c.dir, 'node_modules/.bin/changeset'));
  });
});
