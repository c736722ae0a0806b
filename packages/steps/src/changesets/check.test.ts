import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { git } from '../../../../test/helpers/git-repo.js';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { changesetsBaseBranch, changesetsBaseRef, checkChangesets, renderChangesetSummary, requireChangesets } from './check.js';
import { parseChangeset } from './repo.js';
import { changeset, commitFiles, makeWorkspace, policyFor, testDeps, writeText } from './testing.js';

/** A workspace on main and a feature branch `feature` started from it. */
async function featureRepo(): Promise<{ dir: string; base: string }> {
  const dir = await tempDir();
  const base = await makeWorkspace(dir, { linkModules: false });
  git(dir, 'switch', '-q', '-c', 'feature');
  return { dir, base };
}

const check = (dir: string, extraPolicy = '', head = 'HEAD') => checkChangesets({ repoRoot: dir, base: 'main', head, policy: policyFor(extraPolicy), deps: testDeps() });

describe('check-changesets', () => {
  it('fails listing every changed package that has no changeset, with the fix', async () => {
    const { dir, base } = await featureRepo();
    await commitFiles(dir, { 'packages/a/index.js': 'export const a = 10;\n', 'packages/b/extra.js': 'export {};\n', 'docs/guide.md': '# Guide v2\n' });
    // The base moved on after the branch started: only the branch's own changes count (merge base).
    git(dir, 'switch', '-q', 'main');
    await commitFiles(dir, { 'packages/a/late.js': 'export {};\n' });
    git(dir, 'switch', '-q', 'feature');

    const r = await check(dir);
    expect(r.ok).toBe(false);
    expect(r.mergeBase).toBe(base);
    expect(r.uncovered.map((p) => [p.name, p.path, p.files])).toEqual([
      ['pkg-a', 'packages/a', ['packages/a/index.js']],
      ['pkg-b', 'packages/b', ['packages/b/extra.js']],
    ]);
    expect(r.covered).toEqual([]);
    expect(r.otherFiles).toEqual(['docs/guide.md']);
    const err = await caught(async () => requireChangesets(r));
    expect(err).toMatchObject({ code: 'CHANGESETS_MISSING', message: '2 changed package(s) have no changeset: pkg-a, pkg-b' });
    expect(err.hint).toContain('npx changeset');
    expect(err.hint).toContain('changesets.exempt');
    expect(err.details).toContain('  packages/a/index.js');
    const md = renderChangesetSummary(r);
    expect(md).toContain('2 package(s) need a changeset');
    expect(md).toMatch(/\| `pkg-a` \| `packages\/a` \| 1 \| — \| ❌ missing \|/);
  });

  it('passes when a changeset at head names each changed package (any bump type, none too)', async () => {
    const { dir } = await featureRepo();
    await commitFiles(dir, {
      'packages/a/index.js': 'export const a = 10;\n',
      'packages/b/index.js': 'export const b = 20;\n',
      '.changeset/brave-cats.md': changeset({ 'pkg-a': 'minor' }),
      '.changeset/quiet-dogs.md': changeset({ 'pkg-b': 'none', 'internal-tool': 'patch' }, 'Refactor only'),
    });
    const r = await check(dir);
    expect(r.ok).toBe(true);
    expect(r.uncovered).toEqual([]);
    expect(r.covered.map((p) => [p.name, p.changesets])).toEqual([
      ['pkg-a', [{ file: '.changeset/brave-cats.md', type: 'minor' }]],
      ['pkg-b', [{ file: '.changeset/quiet-dogs.md', type: 'none' }]],
    ]);
    expect(r.otherFiles).toEqual(['.changeset/brave-cats.md', '.changeset/quiet-dogs.md']);
    expect(() => requireChangesets(r)).not.toThrow();
    expect(renderChangesetSummary(r)).toContain('every changed package has one');
  });

  it('counts only changesets committed at head, not files lying in the work tree', async () => {
    const { dir } = await featureRepo();
    await commitFiles(dir, { 'packages/a/index.js': 'export const a = 10;\n' });
    await writeText(path.join(dir, '.changeset/uncommitted.md'), changeset({ 'pkg-a': 'patch' }));
    const r = await check(dir);
    expect(r.uncovered.map((p) => p.name)).toEqual(['pkg-a']);
    expect(r.changesets).toEqual([]);
  });

  it('passes exempt packages and ignored files', async () => {
    const { dir } = await featureRepo();
    await commitFiles(dir, { 'packages/b/index.js': 'export const b = 20;\n', 'packages/a/index.test.js': 'test\n', 'docs/guide.md': '# New\n' });
    const strict = await check(dir);
    expect(strict.uncovered.map((p) => p.name)).toEqual(['pkg-a', 'pkg-b']);

    const r = await check(dir, 'changesets:\n  exempt: [pkg-b]\n  ignore: ["**/*.test.js", "docs/**"]\n');
    expect(r.ok).toBe(true);
    expect(r.exempt.map((p) => [p.name, p.files])).toEqual([['pkg-b', ['packages/b/index.js']]]);
    expect(r.ignoredFiles).toEqual(['docs/guide.md', 'packages/a/index.test.js']);
    expect(r.covered).toEqual([]);
    expect(r.otherFiles).toEqual([]);
    expect(renderChangesetSummary(r)).toMatch(/`pkg-b`.*➖ exempt/);
  });

  it('fails on a malformed changeset, naming the file and line', async () => {
    const { dir } = await featureRepo();
    await commitFiles(dir, { 'packages/a/index.js': 'x\n', '.changeset/bad-type.md': '---\n"pkg-b": patch\n"pkg-a": huge\n---\n\nOops\n' });
    const err = await caught(() => check(dir));
    expect(err).toMatchObject({ code: 'CHANGESET_MALFORMED' });
    expect(err.message).toMatch(/^\.changeset\/bad-type\.md:3: invalid version type "huge" for package "pkg-a"/);
    expect(err.hint).toContain('major, minor, patch, none');

    const { dir: dir2 } = await featureRepo();
    await commitFiles(dir2, { '.changeset/a-ok.md': changeset({ 'pkg-a': 'patch' }), '.changeset/no-front.md': 'Just a summary\n', '.changeset/yaml.md': '---\n"pkg-a": [patch\n---\n\nx\n' });
    const both = await caught(() => check(dir2));
    expect(both.code).toBe('CHANGESET_MALFORMED');
    expect(both.message).toMatch(/^\.changeset\/no-front\.md:1: missing or invalid frontmatter/);
    expect(both.details).toHaveLength(2);
    expect(both.details?.[1]).toMatch(/^\.changeset\/yaml\.md:\d+: invalid YAML in frontmatter/);
  });

  it('fails on a changeset naming a package that is not in the workspace', async () => {
    const { dir } = await featureRepo();
    await commitFiles(dir, { 'packages/a/index.js': 'x\n', '.changeset/typo.md': changeset({ 'pkg-a': 'patch', 'pkg-c': 'minor' }) });
    const err = await caught(() => check(dir));
    expect(err).toMatchObject({ code: 'CHANGESET_UNKNOWN_PACKAGE', message: '.changeset/typo.md:3: the changeset names pkg-c, which is not a package of this workspace' });
    expect(err.details).toContain('workspace packages: internal-tool, pkg-a, pkg-b');
  });

  it('refuses an unknown base, an exempt name that is no package, a folder that is not the repository root, and unrelated histories', async () => {
    const { dir } = await featureRepo();
    const noBase = await caught(() => checkChangesets({ repoRoot: dir, base: 'origin/main', head: 'HEAD', policy: policyFor(), deps: testDeps() }));
    expect(noBase).toMatchObject({ code: 'CHANGESETS_REF_UNKNOWN', hint: expect.stringContaining('fetch-depth: 0') });

    const typo = await caught(() => check(dir, 'changesets:\n  exempt: [packages/b]\n'));
    expect(typo).toMatchObject({ code: 'CHANGESETS_EXEMPT_UNKNOWN', hint: expect.stringContaining('package names') });

    const sub = await caught(() => checkChangesets({ repoRoot: path.join(dir, 'packages/a'), base: 'main', head: 'HEAD', policy: policyFor(), deps: testDeps() }));
    expect(sub).toMatchObject({ code: 'CHANGESETS_NOT_REPO_ROOT', hint: expect.stringContaining('repository root') });
    const notGit = await caught(async () => checkChangesets({ repoRoot: await tempDir(), base: 'main', head: 'HEAD', policy: policyFor(), deps: testDeps() }));
    expect(notGit).toMatchObject({ code: 'CHANGESETS_NOT_GIT' });

    git(dir, 'switch', '-q', '--orphan', 'unrelated');
    await commitFiles(dir, { 'package.json': '{"name":"other"}\n' });
    const unrelated = await caught(() => check(dir));
    expect(unrelated).toMatchObject({ code: 'CHANGESETS_NO_MERGE_BASE' });
  });

  it('names the default base from the policy', () => {
    expect(changesetsBaseBranch(policyFor())).toBe('main');
    expect(changesetsBaseBranch(policyFor('release:\n  branch: trunk\n'))).toBe('trunk');
    expect(changesetsBaseBranch(policyFor('release:\n  branch: trunk\nchangesets:\n  baseBranch: develop\n'))).toBe('develop');
    expect(changesetsBaseRef(policyFor(), {})).toBe('origin/main');
    expect(changesetsBaseRef(policyFor('release:\n  remote: upstream\n'), {})).toBe('upstream/main');
    expect(changesetsBaseRef(policyFor(), { MCP_RELEASE_GIT_REMOTE: 'https://git.example.invalid/o/r.git' })).toBe('main');
  });
});

describe('parseChangeset', () => {
  it('locates each kind of problem at its line', () => {
    expect(parseChangeset('x.md', changeset({ a: 'patch', b: 'none' }))).toEqual({
      file: 'x.md',
      releases: [
        { name: 'a', type: 'patch', line: 2 },
        { name: 'b', type: 'none', line: 3 },
      ],
      summary: 'A change',
    });
    expect(parseChangeset('x.md', '\n\n---\n"a": patch\n"b": 3\n---\n\nx\n')).toMatchObject({ line: 5, message: expect.stringContaining('invalid release type for package "b"') });
    expect(parseChangeset('x.md', '---\n"a": patch\n"a": minor\n---\n\nx\n')).toMatchObject({ line: 3, message: expect.stringContaining('invalid YAML') });
    expect(parseChangeset('x.md', '---\n- a\n---\n\nx\n')).toMatchObject({ line: 2, message: expect.stringContaining('must be an object') });
    expect(parseChangeset('x.md', '')).toMatchObject({ line: 1, message: expect.stringContaining('file is empty') });
  });
});
