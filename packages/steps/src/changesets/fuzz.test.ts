/**
 * Property tests of the changeset reader: any file text parses into releases with known bump
 * types, or into a problem located at a line of the file; read from git, a bad file is the coded
 * CHANGESET_MALFORMED (or CHANGESET_UNKNOWN_PACKAGE) error. Never a TypeError, a RangeError or a hang.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { git } from '../../../../test/helpers/git-repo.js';
import { tempDir } from '../../../../test/helpers/tmp.js';
import { mutatedText, NASTY_STRINGS, settledOrCoded } from '../../../../test/hostile/fuzz.js';
import { BUMP_TYPES, parseChangeset, readChangesets, workspaceAt, type ChangesetProblem } from './repo.js';
import { changeset, commitFiles, makeWorkspace, policyFor, testDeps } from './testing.js';

const names = fc.oneof(fc.constantFrom('pkg-a', 'pkg-b', '@scope/pkg', 'internal-tool'), fc.constantFrom(...NASTY_STRINGS), fc.string({ maxLength: 6 }));
const types = fc.oneof(fc.constantFrom(...BUMP_TYPES), fc.constantFrom('huge', '', '3', '[patch', '{}', '!!js/function "x"', '&a patch', '*a', 'null', 'PATCH', '"minor"'));
const quote = fc.constantFrom((s: string) => s, (s: string) => JSON.stringify(s), (s: string) => `'${s}'`);
const entry = fc.tuple(names, types, quote).map(([n, t, q]) => `${q(n)}: ${t}`);
const fence = fc.constantFrom('---', '--- ', '----', '-- -', '', '---\r', '\ufeff---');
const eol = fc.constantFrom('\n', '\r\n', '\n\n');

/** Changeset-shaped text: front matter fences, entries of names and bump types, a summary, with broken parts. */
const changesetText = fc
  .tuple(fc.constantFrom('', '\n', '  '), fence, fc.array(entry, { maxLength: 4 }), fence, eol, fc.string({ maxLength: 30 }), eol)
  .map(([lead, open, entries, close, nl, summary, end]) => `${lead}${open}${nl}${entries.join(nl)}${nl}${close}${nl}${nl}${summary}${end}`);

const lineCount = (text: string): number => text.split('\n').length;

function isProblem(r: ReturnType<typeof parseChangeset>): r is ChangesetProblem {
  return 'message' in r;
}

describe('changeset reader (property tests)', () => {
  it('any text: releases with known bump types, or a problem at a line of the file', () => {
    const valid = changeset({ 'pkg-a': 'patch', '@scope/pkg': 'minor' }, 'A change\n\nwith two paragraphs');
    fc.assert(
      fc.property(fc.oneof(changesetText, mutatedText(valid, ['-', ':', '"', "'", '\n', ' ', '[', '{', '&', '*', '!', '#', '\r', '\0', '\ud800']), fc.string({ maxLength: 80 })), (text) => {
        const r = parseChangeset('.changeset/fuzz.md', text);
        expect(r.file).toBe('.changeset/fuzz.md');
        if (isProblem(r)) {
          expect(Number.isInteger(r.line) && r.line >= 1 && r.line <= lineCount(text)).toBe(true);
          expect(r.message.length).toBeGreaterThan(0);
          expect(r.message).not.toMatch(/[\r\n]/);
          return;
        }
        expect(typeof r.summary).toBe('string');
        for (const rel of r.releases) {
          expect(typeof rel.name).toBe('string');
          expect(BUMP_TYPES).toContain(rel.type);
          expect(Number.isInteger(rel.line) && rel.line >= 1 && rel.line <= lineCount(text)).toBe(true);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('read from a commit, a changeset is accepted only when it parses and names packages of the workspace', async () => {
    const dir = await tempDir();
    await makeWorkspace(dir, { linkModules: false });
    const deps = testDeps();
    const workspace = await workspaceAt(deps, dir, 'HEAD', policyFor());
    let n = 0;
    await fc.assert(
      fc.asyncProperty(changesetText, async (text) => {
        n += 1;
        git(dir, 'rm', '-q', '--ignore-unmatch', '.changeset/*.md', ':!.changeset/README.md');
        await commitFiles(dir, { [`.changeset/fuzz-${n}.md`]: text }, `fuzz ${n}`);
        const read = await settledOrCoded(() => readChangesets(deps, dir, 'HEAD', workspace), /^CHANGESET_(MALFORMED|UNKNOWN_PACKAGE)$/);
        const parsed = parseChangeset(`.changeset/fuzz-${n}.md`, text);
        if (read) {
          expect(isProblem(parsed)).toBe(false);
          expect(read).toHaveLength(1);
          for (const rel of read[0]?.releases ?? []) expect(workspace.has(rel.name)).toBe(true);
        } else if (!isProblem(parsed)) {
          expect(parsed.releases.some((r) => !workspace.has(r.name))).toBe(true);
        }
      }),
      { numRuns: 25 },
    );
  });
});
