import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { git } from '../helpers/git-repo.js';
import { REPO_ROOT, tempDir } from '../helpers/tmp.js';

describe('workflows from the command line', () => {
  it("lint-workflows: the project's own workflows lint clean; a hostile one fails with SARIF findings", async () => {
    const own = await cli(['lint-workflows', '--repo', REPO_ROOT]);
    expect(own.code, own.stdout + own.stderr).toBe(0);
    expect(own.stdout).toMatch(/no findings in 3 workflow files/);

    const dir = await tempDir();
    await writeFile(path.join(dir, 'triage.yml'), 'on: issues\njobs:\n  t:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo "${{ github.event.issue.title }}"\n');
    const bad = await cli(['lint-workflows', dir, '--format', 'sarif', '--repo', dir]);
    expect(bad.code).toBe(1);
    const sarif = JSON.parse(bad.stdout) as { version: string; runs: Array<{ results: Array<{ ruleId: string; locations: Array<{ physicalLocation: { region: { startLine: number } } }> }> }> };
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs[0]?.results.map((r) => [r.ruleId, r.locations[0]?.physicalLocation.region.startLine])).toEqual([['MR001', 6]]);
    const usage = await cli(['lint-workflows', dir, '--format', 'xml']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/text, json or sarif/);
  });

  it('init writes workflows that lint clean and a valid policy, and refuses to overwrite them', async () => {
    const repo = await tempDir();
    git(repo, 'init', '-q', '-b', 'main');
    await mkdir(path.join(repo, 'server'), { recursive: true });
    await writeFile(path.join(repo, 'server', 'package.json'), JSON.stringify({ name: 'acme-mcp', version: '0.1.0', license: 'MIT' }));
    const args = ['init', '--repo', repo, '--owner', 'acme', '--repo-name', 'acme-mcp', '--package', 'server', '--toolkit-sha', 'a'.repeat(40)];
    const first = await cli(args, { cwd: repo });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/\.github\/workflows\/release\.yml/);
    const policy = await readFile(path.join(repo, 'policies', 'release-policy.yaml'), 'utf8');
    expect(policy).toMatch(/workflow: "?sign\.yml"?/);
    const lint = await cli(['lint-workflows', '--repo', repo], { cwd: repo });
    expect(lint.code, lint.stdout).toBe(0);
    const again = await cli(args, { cwd: repo });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/INIT_FILES_EXIST/);
  });
});
