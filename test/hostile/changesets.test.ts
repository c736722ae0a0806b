/**
 * Malformed and hostile changesets, as a pull request can commit them: check-changesets refuses
 * each with a coded error that names the file and line, runs nothing it reads, never follows a
 * committed symlink out of the repository, and prints file and package names so that no line of
 * the CI log can pass for a workflow command. (check.test.ts covers a bad bump type, missing front
 * matter, bad YAML and an unknown package; the property test is changesets/fuzz.test.ts.)
 */
import { symlink, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatError } from '@mcp-release/manifest';
import { checkChangesets, requireChangesets } from '../../packages/steps/src/changesets/check.js';
import { MAX_FILE_CHARS } from '../../packages/steps/src/changesets/repo.js';
import { changeset, commitFiles, makeWorkspace, policyFor, testDeps } from '../../packages/steps/src/changesets/testing.js';
import { git } from '../helpers/git-repo.js';
import { caught, tempDir } from '../helpers/tmp.js';

async function featureRepo(): Promise<string> {
  const dir = await tempDir('mcp-release-hostile-cs-');
  await makeWorkspace(dir, { linkModules: false });
  git(dir, 'switch', '-q', '-c', 'feature');
  return dir;
}

const check = (dir: string) => checkChangesets({ repoRoot: dir, base: 'main', head: 'HEAD', policy: policyFor(), deps: testDeps() });

/** What the CLI prints for an error: no line of it may start a GitHub workflow command. */
function expectNoWorkflowCommand(err: unknown): void {
  const printed = formatError(err);
  for (const line of printed.split(/\r\n|[\r\n]/)) expect(line.trimStart().startsWith('::'), printed).toBe(false);
}

describe('hostile changesets in a pull request', () => {
  it('package names that are shell commands, workflow commands or object keys are unknown packages, and nothing runs', async () => {
    const dir = await featureRepo();
    const names = ['$(touch PWNED)', '`touch PWNED`', 'pkg-a\n::error::forged', 'pkg-a\r::add-mask::x', '__proto__', 'constructor', '${{ github.token }}'];
    await commitFiles(dir, { 'packages/a/index.js': 'x\n', '.changeset/evil.md': changeset(Object.fromEntries(names.map((n) => [n.replace(/\n/g, '\\n').replace(/\r/g, '\\r'), 'patch']))) });
    const err = await caught(() => check(dir));
    expect(err).toMatchObject({ code: 'CHANGESET_UNKNOWN_PACKAGE', hint: expect.stringContaining('package name') });
    expect(err.details).toHaveLength(names.length + 1);
    expect(err.details?.join('\n')).toContain('"pkg-a\\n::error::forged"');
    expectNoWorkflowCommand(err);
    expect(await readdir(dir)).not.toContain('PWNED');
  });

  it('a changeset file whose name holds a line break and a workflow command is named quoted', async () => {
    const dir = await featureRepo();
    await commitFiles(dir, { 'packages/a/index.js': 'x\n', '.changeset/x\n::error::forged.md': 'no front matter\n' });
    const err = await caught(() => check(dir));
    expect(err).toMatchObject({ code: 'CHANGESET_MALFORMED', message: expect.stringMatching(/^"\.changeset\/x\\n::error::forged\.md":1: /) });
    expectNoWorkflowCommand(err);
  });

  it('binary junk, a NUL byte, invalid UTF-8 and a lone BOM are malformed, at a line of the file', async () => {
    const dir = await featureRepo();
    const junk = Buffer.from([0x2d, 0x2d, 0x2d, 0x0a, 0xff, 0xfe, 0x00, 0x3a, 0x20, 0x70, 0x61, 0x74, 0x63, 0x68, 0x0a, 0x2d, 0x2d, 0x2d, 0x0a, 0xc3, 0x28]);
    await commitFiles(dir, { 'packages/a/index.js': 'x\n' });
    await writeFile(path.join(dir, '.changeset', 'junk.md'), junk);
    await writeFile(path.join(dir, '.changeset', 'nul.md'), '---\n"pkg-a\0": patch\n---\n\nx\n');
    await writeFile(path.join(dir, '.changeset', 'bom.md'), '\ufeff');
    await commitFiles(dir, {}, 'junk');
    const err = await caught(() => check(dir));
    expect(err.code).toMatch(/^CHANGESET_(MALFORMED|UNKNOWN_PACKAGE)$/);
    for (const d of err.details ?? []) expect(d).toMatch(/^\.changeset\/[a-z]+\.md:\d+: /);
    expectNoWorkflowCommand(err);
  });

  it('a committed symlink is read as git stores it (its target path), never followed out of the repository', async () => {
    const dir = await featureRepo();
    const outside = path.join(await tempDir(), 'looks-fine.md');
    await writeFile(outside, changeset({ 'pkg-a': 'major' }));
    await commitFiles(dir, { 'packages/a/index.js': 'x\n' });
    await symlink(outside, path.join(dir, '.changeset', 'linked.md'));
    await commitFiles(dir, {}, 'a symlinked changeset');
    const err = await caught(() => check(dir));
    expect(err).toMatchObject({ code: 'CHANGESET_MALFORMED', message: expect.stringMatching(/^\.changeset\/linked\.md:1: /) });
  });

  it('an alias bomb and 5 000 duplicated entries in the front matter are malformed and located', async () => {
    const dir = await featureRepo();
    const bomb = ['---', 'a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`), '---', '', 'boom', ''].join('\n');
    const dup = `---\n${'"pkg-a": patch\n'.repeat(5_000)}---\n\nmany\n`;
    await commitFiles(dir, { 'packages/a/index.js': 'x\n', '.changeset/bomb.md': bomb, '.changeset/dup.md': dup });
    const err = await caught(() => check(dir));
    expect(err.code).toBe('CHANGESET_MALFORMED');
    expect(err.details).toEqual([expect.stringMatching(/^\.changeset\/bomb\.md:2: invalid release type/), expect.stringMatching(/^\.changeset\/dup\.md:3: invalid YAML/)]);
  });

  it('a 3 MB changeset is read whole and counts; one over 4 MiB is refused, never read from its cut-off tail', async () => {
    const dir = await featureRepo();
    await commitFiles(dir, { 'packages/a/index.js': 'x\n', '.changeset/long.md': changeset({ 'pkg-a': 'minor' }, 'y'.repeat(3 * 1024 * 1024)) });
    const r = await check(dir);
    expect(r.ok).toBe(true);
    expect(r.covered.map((p) => [p.name, p.changesets])).toEqual([['pkg-a', [{ file: '.changeset/long.md', type: 'minor' }]]]);
    await commitFiles(dir, { '.changeset/long.md': changeset({ 'pkg-a': 'minor' }, 'y'.repeat(MAX_FILE_CHARS)) });
    expect(await caught(() => check(dir))).toMatchObject({ code: 'CHANGESETS_INPUT_TOO_LARGE', message: expect.stringMatching(/^\.changeset\/long\.md at [0-9a-f]{40} is more than/) });
  });

  it('changed files named with line breaks are listed quoted when a changeset is missing', async () => {
    const dir = await featureRepo();
    await commitFiles(dir, { 'packages/a/x\n::error::forged.js': 'x\n' });
    const r = await check(dir);
    expect(r.ok).toBe(false);
    const err = await caught(async () => requireChangesets(r));
    expect(err).toMatchObject({ code: 'CHANGESETS_MISSING' });
    expect(err.details).toContain('  "packages/a/x\\n::error::forged.js"');
    expectNoWorkflowCommand(err);
  });
});
