import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Parser } from 'yaml';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { LINT_RULES, lintWorkflowFiles, lintWorkflowText, type LintFinding, type LintOptions } from './index.js';
import { CLEAN_CI, CLEAN_RELEASE, CLEAN_SIGN, POSITIVES, SHA_CHECKOUT } from './testing.js';

function lint(text: string | Uint8Array, file = 'ci.yml', options: LintOptions = {}): LintFinding[] {
  return lintWorkflowText(text, file, { root: '/repo', ...options }).findings;
}

const ids = (findings: LintFinding[]): string[] => findings.map((f) => f.ruleId);

/** A one-job workflow around the given steps (already indented as list items under steps:). */
function job(steps: string, head = 'on: push\npermissions: {}\n', jobExtra = ''): string {
  return `${head}jobs:\n  j:\n    runs-on: ubuntu-latest\n${jobExtra}    steps:\n${steps}`;
}

async function workflowsDir(files: Record<string, string>): Promise<{ root: string; dir: string }> {
  const root = await tempDir();
  const dir = path.join(root, '.github', 'workflows');
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return { root, dir };
}

describe('lint-workflows: one true positive per rule', () => {
  it.each(POSITIVES)('%s fires on %s, alone, with a message and a fix', (rule, file, text) => {
    const findings = lint(text, file);
    expect(ids(findings)).toEqual([rule]);
    const [f] = findings as [LintFinding];
    expect(f.severity).toBe(LINT_RULES.find((r) => r.id === rule)?.severity);
    expect(f.file).toBe(file);
    expect(f.message.length).toBeGreaterThan(20);
    expect(f.fix.length).toBeGreaterThan(20);
    expect(f.line).toBeGreaterThan(1);
  });

  it('every rule in the table has a true positive', () => {
    const covered = new Set(POSITIVES.map(([rule]) => rule));
    covered.add('MR000'); // its own describe block below
    expect(LINT_RULES.map((r) => r.id).filter((id) => !covered.has(id))).toEqual([]);
  });

  it('a hardened release setup gives no finding, as text and as files', async () => {
    expect(lint(CLEAN_RELEASE, 'release.yml')).toEqual([]);
    expect(lint(CLEAN_SIGN, 'sign.yml', { releaseWorkflows: ['release.yml', 'sign.yml'] })).toEqual([]);
    expect(lint(CLEAN_CI, 'ci.yml')).toEqual([]);
    const { root } = await workflowsDir({ 'release.yml': CLEAN_RELEASE, 'sign.yml': CLEAN_SIGN, 'ci.yml': CLEAN_CI });
    const report = await lintWorkflowFiles([path.join(root, '.github/workflows')], { root });
    expect(report).toMatchObject({ findings: [], summary: { files: 3, errors: 0, warnings: 0 } });
    expect(report.files).toEqual(['.github/workflows/ci.yml', '.github/workflows/release.yml', '.github/workflows/sign.yml']);
    // sign.yml is a release workflow because release.yml calls it.
    expect(report.releaseWorkflows).toEqual(['.github/workflows/release.yml', '.github/workflows/sign.yml']);
  });
});

describe('MR001 template injection', () => {
  it('names each untrusted context, in run: and github-script, and points at the expression', () => {
    const text = job(
      [
        '      - run: echo "${{ github.event.pull_request.head.ref }}"',
        "      - run: echo '${{ github.event.commits[0].message }}'",
        "      - run: echo '${{ github.event['head_commit']['message'] }}'",
        '      - run: echo ${{ toJSON(github.event.pull_request) }}',
        '      - run: echo ${{ github.head_ref }} ${{ github.event.review.body }} ${{ github.event.pages[*].page_name }}',
        `      - uses: actions/github-script@${SHA_CHECKOUT} # v7`,
        '        with:',
        '          script: console.log("${{ github.event.comment.body }}")',
        '      - run: echo "${{ github.event.head_commit.author.email }}" "${{ github.event.issue.body }}"',
      ].join('\n') + '\n',
    );
    const findings = lint(text);
    expect(ids(findings)).toEqual(Array(10).fill('MR001'));
    expect(findings.map((f) => [f.line, f.column])).toEqual([
      [7, 20],
      [8, 20],
      [9, 20],
      [10, 19],
      [11, 19],
      [11, 42],
      [11, 74],
      [14, 32],
      [15, 20],
      [15, 67],
    ]);
    expect(findings[0]?.message).toContain("the pull request's branch name");
    expect(findings[3]?.message).toContain('github.event.pull_request (which holds');
    expect(findings[7]?.message).toContain('github-script');
    expect(findings[7]?.fix).toContain('process.env.BODY');
    expect(findings[0]?.fix).toContain('env: { REF: ${{ github.event.pull_request.head.ref }} }');
    expect(findings[0]?.fix).toContain('"$REF"');
  });

  it('reports the line and column of the expression inside a multi-line run block, in every scalar style', () => {
    const text = [
      'on: issue_comment',
      'permissions: {}',
      'jobs:',
      '  reply:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - name: literal block',
      '        run: |',
      '          set -eu',
      '          echo "start"',
      '',
      '          if true; then',
      '            echo "${{ github.event.comment.body }}"',
      '          fi',
      '      - run: >-',
      '          echo one',
      '          && echo ${{ github.event.comment.body }}',
      '      - run: "echo a\\n  echo ${{ github.event.comment.body }}"',
      '      - run: echo plain',
      '          ${{ github.event.comment.body }} twice ${{ github.event.comment.body }}',
      '',
    ].join('\n');
    const findings = lint(text);
    expect(findings.map((f) => [f.ruleId, f.line, f.column])).toEqual([
      ['MR001', 13, 19],
      ['MR001', 17, 19],
      ['MR001', 18, 30],
      ['MR001', 20, 11],
      ['MR001', 20, 50],
    ]);
  });

  it('dispatch inputs are untrusted unless boolean or number; workflow_call inputs and trusted contexts are not flagged', () => {
    const head = `on:
  workflow_dispatch:
    inputs:
      name: { type: string }
      flag: { type: boolean }
      count: { type: number }
      choice: { type: choice, options: [a, b] }
permissions: {}
`;
    const findings = lint(
      job(
        [
          '      - run: echo ${{ inputs.name }}',
          '      - run: echo ${{ github.event.inputs.choice }}',
          '      - run: echo ${{ inputs.undeclared }}',
          '      - run: echo ${{ inputs.flag }} ${{ inputs.count }} ${{ github.event.issue.number }} ${{ github.sha }}',
          "      - run: echo ${{ format('{0}', 'github.event.issue.title') }}",
        ].join('\n') + '\n',
        head,
      ),
    );
    expect(findings.map((f) => [f.ruleId, f.line])).toEqual([
      ['MR001', 13],
      ['MR001', 14],
      ['MR001', 15],
    ]);
    expect(findings[0]?.message).toContain('workflow_dispatch input "name"');
    // The same expressions in a workflow_call workflow: inputs come from the calling workflow.
    expect(lint(job('      - run: echo ${{ inputs.name }}\n', 'on:\n  workflow_call:\n    inputs:\n      name: { type: string }\npermissions: {}\n'))).toEqual([]);
  });

  it('follows untrusted text through env: and flags ${{ env.X }}, but not "$X"', () => {
    const text = `on: pull_request
permissions: {}
env:
  TITLE: \${{ github.event.pull_request.title }}
jobs:
  j:
    runs-on: ubuntu-latest
    env:
      BRANCH: \${{ github.head_ref }}
    steps:
      - run: echo "$TITLE $BRANCH"
      - run: echo "\${{ env.TITLE }}"
      - run: echo "\${{ env.BRANCH }}"
      - env:
          BRANCH: main
        run: echo "\${{ env.BRANCH }}"
`;
    const findings = lint(text);
    expect(findings.map((f) => [f.ruleId, f.line])).toEqual([
      ['MR001', 12],
      ['MR001', 13],
    ]);
    expect(findings[0]?.message).toContain('env.TITLE (set from a pull request title)');
    expect(findings[0]?.fix).toContain('use "$TITLE" (quoted) in the script instead of ${{ env.TITLE }}');
  });
});

describe('MR002 / MR011 pinning', () => {
  it('flags tags, branches, missing refs, expressions and Docker tags; accepts local, digests and commented SHAs', () => {
    const text = `on: push
permissions: {}
jobs:
  call:
    uses: octo/shared/.github/workflows/build.yml@main
  local:
    uses: ./.github/workflows/build.yml
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: some/action
      - uses: docker://alpine:3.20
      - uses: docker://alpine@sha256:${'a'.repeat(64)}
      - uses: ./actions/local
      - uses: actions/setup-node@${SHA_CHECKOUT} # v4.4.0
      - uses: actions/cache@${SHA_CHECKOUT}   # tag=v4
      - uses: actions/upload-artifact@${SHA_CHECKOUT}
      - uses: actions/download-artifact@${SHA_CHECKOUT.toUpperCase()} # pinned
`;
    const findings = lint(text);
    expect(findings.map((f) => [f.ruleId, f.severity, f.line, f.column])).toEqual([
      ['MR002', 'error', 5, 11],
      ['MR002', 'error', 11, 15],
      ['MR002', 'error', 12, 15],
      ['MR002', 'error', 13, 15],
      ['MR011', 'warning', 18, 15],
      ['MR011', 'warning', 19, 15],
    ]);
    expect(findings[0]?.message).toContain('octo/shared/.github/workflows/build.yml');
    expect(findings[1]?.fix).toContain('actions/checkout@<40-hex sha> # v4');
    expect(findings[1]?.fix).toContain('gh api repos/actions/checkout/commits/v4');
    expect(findings[2]?.message).toContain('has no @ref');
    expect(findings[3]?.fix).toContain('docker://alpine@sha256:');
  });

  it('trustedOwners exempts an owner from pinning', () => {
    const text = job('      - uses: my-org/tool@v1\n      - uses: actions/checkout@v4\n');
    expect(ids(lint(text, 'ci.yml', { trustedOwners: ['My-Org'] }))).toEqual(['MR002']);
  });
});

describe('MR003 / MR004 permissions', () => {
  it('flags workflow-level write scopes in a mapping, not read scopes or job-level writes', () => {
    const text = `on: push
permissions:
  contents: read
  packages: write
  pull-requests: write
jobs:
  j:
    runs-on: ubuntu-latest
    permissions:
      contents: write
    steps:
      - run: git push
`;
    expect(lint(text).map((f) => [f.ruleId, f.line, f.column])).toEqual([
      ['MR003', 4, 3],
      ['MR003', 5, 3],
    ]);
    expect(lint(job('      - run: npm test\n', 'on: push\npermissions: read-all\n'))).toEqual([]);
  });

  it('id-token: write is accepted only in jobs that sign, attest, publish or call a reusable workflow', () => {
    const perms = '    permissions:\n      id-token: write\n';
    const signing = [
      '      - run: cosign sign-blob --yes out/x.tgz',
      `      - uses: actions/attest-build-provenance@${SHA_CHECKOUT} # v2`,
      '      - run: npx mcp-release sign --out out',
      '      - run: npx @octo/mcp-release@1.2.0 provenance --out out',
      `      - uses: sigstore/gh-action-sigstore-python@${SHA_CHECKOUT} # v3`,
      '      - run: gh attestation verify x.tgz -R o/r',
    ];
    for (const step of signing) expect(lint(job(`${step}\n`, 'on: push\npermissions: {}\n', perms)), step).toEqual([]);
    const call = 'on: push\npermissions: {}\njobs:\n  sign:\n    uses: ./.github/workflows/sign.yml\n    permissions:\n      id-token: write\n';
    expect(lint(call)).toEqual([]);
    const writeAll = lint(job('      - run: npm test\n', 'on: push\npermissions: {}\n', '    permissions: write-all\n'));
    expect(writeAll.map((f) => [f.ruleId, f.line, f.column])).toEqual([['MR004', 6, 18]]);
    expect(writeAll[0]?.fix).toContain('jobs.j.permissions');
  });
});

describe('MR005 long-lived publish credentials', () => {
  it('flags token env/with/secrets keys, secrets named like registry tokens and written _authToken lines', () => {
    const text = `on: workflow_dispatch
permissions: {}
env:
  TWINE_PASSWORD: \${{ secrets.PYPI }}
jobs:
  call:
    uses: ./.github/workflows/publish.yml
    secrets:
      NPM_TOKEN: \${{ secrets.NPM_TOKEN }}
  j:
    runs-on: ubuntu-latest
    environment: release
    steps:
      - uses: JS-DevTools/npm-publish@${SHA_CHECKOUT} # v3
        with:
          token: \${{ secrets.NPM_PUBLISH_TOKEN }}
      - run: |
          echo "//registry.example/:_authToken=\${TOKEN}" >> ~/.npmrc
        env:
          PYPI_API_TOKEN: hard-coded
          NODE_AUTH_TOKEN: \${{ secrets.GITHUB_TOKEN }}
`;
    const findings = lint(text, 'release.yml').filter((f) => f.ruleId === 'MR005');
    expect(findings.map((f) => [f.line, f.column])).toEqual([
      [4, 3],
      [9, 7],
      [16, 11],
      [18, 17],
      [20, 11],
    ]);
    expect(findings[2]?.message).toContain('the long-lived secret NPM_PUBLISH_TOKEN');
    expect(findings[4]?.message).toContain('a value written in the workflow');
    expect(findings[0]?.fix).toContain('trusted publishing');
  });
});

describe('MR006 publishing outside the release workflow', () => {
  it('finds every publish command and publishing action, and ignores dry runs and comments', () => {
    const steps = [
      '      - run: npm publish --dry-run',
      '      - run: |',
      '          # npm publish happens in release.yml',
      '          npm run build',
      '      - run: yarn workspaces foreach --all npm publish',
      '      - run: python -m twine upload dist/*',
      '      - run: gh release create v1 --draft',
      '      - run: node packages/cli/dist/mcp-release.mjs publish-npm --out out',
      '      - run: npx changeset publish',
      `      - uses: softprops/action-gh-release@${SHA_CHECKOUT} # v2`,
      `      - uses: changesets/action@${SHA_CHECKOUT} # v1`,
      '        with:',
      '          version: npx changeset version',
      `      - uses: changesets/action@${SHA_CHECKOUT} # v1`,
      '        with:',
      '          publish: npx changeset publish',
      `      - uses: pypa/gh-action-pypi-publish@${SHA_CHECKOUT} # v1.12.4`,
      `      - uses: octo/mcp-release@${SHA_CHECKOUT} # v1`,
      '        with:',
      '          step: publish-npm',
      `      - uses: octo/mcp-release@${SHA_CHECKOUT} # v1`,
      '        with:',
      '          step: sbom',
    ];
    const text = job(`${steps.join('\n')}\n`, 'on: workflow_dispatch\npermissions: {}\n', '    environment: release\n    permissions:\n      id-token: write\n');
    const findings = lint(text);
    expect(findings.map((f) => [f.ruleId, f.line])).toEqual([
      ['MR006', 14],
      ['MR006', 15],
      ['MR006', 16],
      ['MR006', 17],
      ['MR006', 18],
      ['MR006', 19],
      ['MR006', 23],
      ['MR006', 26],
      ['MR006', 27],
    ]);
    expect(findings[0]?.message).toMatch(/^yarn npm publish in jobs\.j\.steps\[2\]: ci\.yml is not a release workflow/);
    // The same file named as a release workflow may publish.
    expect(lint(text, 'ci.yml', { releaseWorkflows: ['ci.yml'] })).toEqual([]);
    expect(lint(text, 'release.yml')).toEqual([]);
  });

  it('refuses an empty release workflow name and a bad size limit with coded errors', async () => {
    expect(await caught(async () => lint(CLEAN_CI, 'ci.yml', { releaseWorkflows: [' '] }))).toMatchObject({ code: 'LINT_OPTIONS_INVALID' });
    expect(await caught(async () => lint(CLEAN_CI, 'ci.yml', { maxBytes: 0 }))).toMatchObject({ code: 'LINT_OPTIONS_INVALID', hint: expect.stringContaining('maxBytes') });
    expect(await caught(() => lintWorkflowFiles(['.'], { maxBytes: Number.NaN }))).toMatchObject({ code: 'LINT_OPTIONS_INVALID' });
  });

  it('quotes workflow text in messages without line breaks, control or bidi characters, and bounded', () => {
    const name = 'ship\u001b[2J\u202eit\nFAKE.yml:1:1 error MR000 forged';
    const text = job(`      - name: ${JSON.stringify(name)}\n        run: npm publish\n      - uses: a/b@${'x'.repeat(5000)}\n`, 'on: push\npermissions: {}\n', '    environment: release\n');
    const findings = lint(text);
    expect(ids(findings)).toEqual(['MR006', 'MR002']);
    expect(findings[0]?.message).toContain('("ship\\u001b[2J\\u202eit FAKE.yml:1:1 error MR000 forged")');
    for (const f of findings) {
      expect([...f.message].filter((c) => c.charCodeAt(0) < 0x20 || c === '\u202e')).toEqual([]);
      expect(f.message.length).toBeLessThanOrEqual(1000);
      expect(f.fix.length).toBeLessThanOrEqual(1000);
    }
  });
});

describe('MR007 / MR008 / MR010 publishing jobs', () => {
  it('release: triggers fire for created/published (or no types) in every trigger shape; other types do not', () => {
    const steps = '      - run: npm publish\n';
    const extra = '    environment: release\n';
    for (const head of ['on: release\n', 'on: [push, release]\n', 'on:\n  release:\n', 'on:\n  release:\n    types: created\n']) {
      expect(ids(lint(job(steps, `${head}permissions: {}\n`, extra), 'release.yml')), head).toEqual(['MR007']);
    }
    expect(lint(job(steps, 'on:\n  release:\n    types: [deleted]\npermissions: {}\n', extra), 'release.yml')).toEqual([]);
  });

  it('a publishing job needs an environment; a job calling a reusable workflow cannot have one and is not flagged', () => {
    const findings = lint(job('      - run: twine upload dist/*\n', 'on: workflow_dispatch\npermissions: {}\n'), 'release.yml');
    expect(findings.map((f) => [f.ruleId, f.line, f.column])).toEqual([['MR010', 4, 3]]);
    expect(findings[0]?.message).toContain('twine upload in jobs.j.steps[0]');
    expect(lint('on: workflow_dispatch\npermissions: {}\njobs:\n  p:\n    uses: ./.github/workflows/publish.yml\n', 'release.yml')).toEqual([]);
  });

  it('an environment without a name does not count', () => {
    for (const env of ["    environment: ''\n", '    environment:\n      url: https://example.invalid\n']) {
      expect(ids(lint(job('      - run: npm publish\n', 'on: workflow_dispatch\npermissions: {}\n', env), 'release.yml')), env).toEqual(['MR010']);
    }
    expect(lint(job('      - run: npm publish\n', 'on: workflow_dispatch\npermissions: {}\n', '    environment:\n      name: release\n'), 'release.yml')).toEqual([]);
  });

  it('a scheduled publish is flagged at the schedule: trigger', () => {
    const text = job('      - run: gh release upload v1 out/*\n', "on:\n  push:\n  schedule:\n    - cron: '0 0 * * 1'\npermissions: {}\n", '    environment: release\n');
    expect(lint(text, 'release.yml').map((f) => [f.ruleId, f.line, f.column])).toEqual([['MR008', 3, 3]]);
  });
});

describe('MR009 pull_request_target', () => {
  it('flags a checkout of the head by sha, ref, head_ref, refs/pull or the fork repository, only under pull_request_target', () => {
    const checkout = (w: string) => `      - uses: actions/checkout@${SHA_CHECKOUT} # v4\n        with:\n${w}`;
    const steps = [
      checkout('          ref: ${{ github.event.pull_request.head.ref }}\n'),
      checkout('          ref: ${{ github.head_ref }}\n'),
      checkout('          ref: refs/pull/${{ github.event.number }}/merge\n'),
      checkout('          repository: ${{ github.event.pull_request.head.repo.full_name }}\n'),
      checkout('          ref: ${{ github.event.pull_request.base.sha }}\n'),
    ].join('');
    const findings = lint(job(steps, 'on:\n  pull_request_target:\n    types: [opened]\npermissions: {}\n'));
    expect(findings.map((f) => [f.ruleId, f.line])).toEqual([
      ['MR009', 11],
      ['MR009', 14],
      ['MR009', 17],
      ['MR009', 20],
    ]);
    expect(lint(job(steps, 'on: pull_request\npermissions: {}\n'))).toEqual([]);
  });
});

describe('anchors and aliases', () => {
  it('reads steps, run scripts and env through aliases, and reports where the text is', () => {
    const text = `on: issues
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    env: &tainted
      T: \${{ github.event.issue.title }}
    steps:
      - &greet
        run: echo "\${{ github.event.issue.body }}"
  b:
    runs-on: ubuntu-latest
    env: *tainted
    steps:
      - *greet
      - run: &script echo "\${{ env.T }}"
      - run: *script
      - uses: &co actions/checkout@v4
      - uses: *co
`;
    const findings = lint(text);
    expect(findings.map((f) => [f.ruleId, f.line, f.message.slice(0, 50)])).toEqual([
      ['MR001', 10, '${{ github.event.issue.body }} in the run: script '],
      ['MR001', 10, '${{ github.event.issue.body }} in the run: script '],
      ['MR001', 16, '${{ env.T }} in the run: script of jobs.b.steps[1]'],
      ['MR001', 16, '${{ env.T }} in the run: script of jobs.b.steps[2]'],
      // An alias reports where the aliased text is: fixing it there fixes both uses.
      ['MR002', 18, 'jobs.b.steps[3] uses actions/checkout, which is pi'],
      ['MR002', 18, 'jobs.b.steps[4] uses actions/checkout, which is pi'],
    ]);
    expect(findings[1]?.message).toContain('jobs.b.steps[0]');
  });

  it('a self-referencing anchor and an alias bomb do not hang or crash', () => {
    const bomb = ['on: push', 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
    for (let i = 0; i < 12; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
    bomb.push('jobs: &j', '  j:', '    runs-on: ubuntu-latest', '    steps: &s [*s, *m, *m]');
    const findings = lint(`${bomb.join('\n')}\n`);
    expect(findings.map((f) => f.message)).toEqual(['steps[0] is not a mapping', 'steps[1] is not a mapping', 'steps[2] is not a mapping'].map((m) => expect.stringContaining(m)));
    expect(ids(findings)).toEqual(['MR000', 'MR000', 'MR000']);
  });
});

describe('MR000 files that are not readable workflows', () => {
  const cases: Array<[string, string | Uint8Array, RegExp, number, number]> = [
    ['invalid YAML', 'on: push\njobs:\n  j: [\n', /invalid YAML/, 4, 1],
    ['a duplicate key', 'on: push\non: pull_request\njobs:\n  j: {}\n', /invalid YAML: the key "on" appears twice in one mapping/, 2, 1],
    ['two documents', 'on: push\njobs:\n  j: {runs-on: x}\n---\nfoo: 1\n', /more than one YAML document/, 4, 1],
    ['a list', '- on: push\n', /not a YAML mapping/, 1, 1],
    ['a scalar', 'hello\n', /not a YAML mapping/, 1, 1],
    ['an empty file', '', /not a YAML mapping/, 1, 1],
    ['no jobs', 'name: x\non: push\n', /no jobs:/, 1, 1],
    ['an action, not a workflow', 'name: x\nruns:\n  using: node24\n  main: x.js\n', /no on: and jobs:/, 1, 1],
    ['empty jobs', 'on: push\njobs: {}\n', /jobs: is not a non-empty mapping/, 2, 7],
    ['a job that is not a mapping', 'on: push\njobs:\n  j: 3\n', /job "j" is not a mapping/, 3, 6],
    ['steps that are not a list', 'on: push\njobs:\n  j:\n    steps: run\n', /jobs\.j\.steps is not a list/, 4, 12],
    ['no trigger', 'on: {}\njobs:\n  j: {runs-on: x}\n', /on: names no event/, 1, 5],
    ['a null trigger', 'on:\njobs:\n  j: {runs-on: x}\n', /on: names no event/, 1, 4],
    ['not UTF-8', Buffer.concat([Buffer.from('on: push\njobs:\n  j:\n    name: caf'), Buffer.from([0xe9]), Buffer.from('\n')]), /not valid UTF-8 \(byte 0xe9 at byte offset 33/, 4, 14],
    ['UTF-16', Buffer.from('\ufeffon: push\n', 'utf16le'), /UTF-16/, 1, 1],
    ['an unpaired surrogate', 'on: push\njobs:\n  j: "\ud800"\n', /not well-formed Unicode/, 1, 1],
    ['deep nesting', `on: push\njobs: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, /nests deeper than 64 levels/, 2, 71],
  ];
  it.each(cases)('%s is one MR000 finding with a position', (_name, text, message, line, column) => {
    const findings = lint(text);
    expect(findings.length).toBeGreaterThan(0);
    expect(findings[0]).toMatchObject({ ruleId: 'MR000', severity: 'error', line, column, message: expect.stringMatching(message) });
    expect(findings.every((f) => f.ruleId === 'MR000')).toBe(true);
  });

  it('a file over the size limit is one finding and is not parsed', async () => {
    const big = `on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n${'      - run: echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n'.repeat(20)}`;
    const parse = vi.spyOn(Parser.prototype, 'parse');
    try {
      expect(lint(big, 'ci.yml', { maxBytes: 1000 })).toEqual([expect.objectContaining({ ruleId: 'MR000', line: 1, message: expect.stringContaining(`is ${big.length} bytes`) })]);
      const { root, dir } = await workflowsDir({ 'big.yml': big });
      const report = await lintWorkflowFiles([dir], { root, maxBytes: 1000 });
      expect(report.findings).toEqual([expect.objectContaining({ ruleId: 'MR000', file: '.github/workflows/big.yml', message: expect.stringContaining(`is ${big.length} bytes`) })]);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });
});

describe('lintWorkflowFiles', () => {
  it('treats workflows a release workflow calls as release workflows, and flags other callers and scheduled callers of a publishing workflow', async () => {
    const publish = `on: workflow_call
permissions: {}
jobs:
  npm:
    runs-on: ubuntu-latest
    environment: release
    permissions:
      id-token: write
    steps:
      - run: npm publish
`;
    const caller = (trigger: string) => `on: ${trigger}\npermissions: {}\njobs:\n  ship:\n    uses: ./.github/workflows/publish.yml\n    permissions:\n      id-token: write\n`;
    const { root, dir } = await workflowsDir({
      'release.yml': caller('workflow_dispatch'),
      'publish.yml': publish,
      'ci.yml': caller('push'),
      'nightly.yml': "on:\n  schedule:\n    - cron: '0 0 * * *'\npermissions: {}\njobs:\n  ship:\n    uses: ./.github/workflows/publish.yml\n",
      'notes.txt': 'not a workflow',
    });
    await mkdir(path.join(dir, 'sub.yml'));
    const report = await lintWorkflowFiles([dir], { root });
    expect(report.files).toEqual(['.github/workflows/ci.yml', '.github/workflows/nightly.yml', '.github/workflows/publish.yml', '.github/workflows/release.yml']);
    expect(report.releaseWorkflows).toEqual(['.github/workflows/publish.yml', '.github/workflows/release.yml']);
    expect(report.findings.map((f) => [f.file, f.ruleId, f.line])).toEqual([
      ['.github/workflows/ci.yml', 'MR006', 5],
      ['.github/workflows/nightly.yml', 'MR008', 2],
      ['.github/workflows/nightly.yml', 'MR006', 7],
    ]);
    expect(report.findings[0]?.message).toContain('jobs.ship calls publish.yml, which publishes');

    // Alone, the same publishing workflow is not a release workflow.
    const alone = await lintWorkflowFiles([path.join(dir, 'publish.yml')], { root });
    expect(alone.findings.map((f) => f.ruleId)).toEqual(['MR006']);
  });

  it('reads explicit files and folders once each, through symlinks, in a stable order', async () => {
    const { root, dir } = await workflowsDir({ 'b.yml': POSITIVES[1]?.[2] ?? '', 'a.yaml': CLEAN_CI });
    await symlink(path.join(dir, 'b.yml'), path.join(dir, 'c.yml'));
    const report = await lintWorkflowFiles([path.join(dir, 'b.yml'), dir], { root });
    expect(report.files).toEqual(['.github/workflows/a.yaml', '.github/workflows/b.yml', '.github/workflows/c.yml']);
    expect(report.findings.map((f) => `${f.file}:${f.line}:${f.column}:${f.ruleId}`)).toEqual(['.github/workflows/b.yml:7:15:MR002', '.github/workflows/c.yml:7:15:MR002']);
    // No paths: .github/workflows under the root.
    const cwd = process.cwd();
    try {
      process.chdir(root);
      expect((await lintWorkflowFiles([], {})).files).toEqual(report.files);
    } finally {
      process.chdir(cwd);
    }
  });

  it('fails with coded errors for a missing path, a folder with no workflows and an unreadable file', async () => {
    const { root, dir } = await workflowsDir({ 'README.md': '# nothing' });
    expect(await caught(() => lintWorkflowFiles([path.join(root, 'nope')], { root }))).toMatchObject({ code: 'LINT_PATH_MISSING', hint: expect.stringContaining('.github/workflows') });
    expect(await caught(() => lintWorkflowFiles([dir], { root }))).toMatchObject({ code: 'LINT_NO_WORKFLOWS' });
    await writeFile(path.join(dir, 'locked.yml'), CLEAN_CI);
    await chmod(path.join(dir, 'locked.yml'), 0o000);
    if (process.getuid?.() !== 0) {
      expect(await caught(() => lintWorkflowFiles([dir], { root }))).toMatchObject({ code: 'LINT_READ_FAILED', message: expect.stringContaining('EACCES') });
    }
  });

  it('parses each of 200 files exactly once and reports all of them', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) {
      const [, , text] = POSITIVES[i % POSITIVES.length] as readonly [string, string, string];
      files[`w${String(i).padStart(3, '0')}.yml`] = i % 2 ? text : CLEAN_CI;
    }
    const { root, dir } = await workflowsDir(files);
    const parse = vi.spyOn(Parser.prototype, 'parse');
    try {
      const report = await lintWorkflowFiles([dir], { root });
      expect(parse).toHaveBeenCalledTimes(200);
      parse.mockRestore();
      expect(report.summary.files).toBe(200);
      // The same findings as linting each text alone (no file here calls another).
      const alone = Object.entries(files).flatMap(([name, text]) => lintWorkflowText(text, path.join(dir, name), { root }).findings);
      expect(report.findings).toEqual(alone);
      expect(new Set(report.findings.map((f) => f.file)).size).toBe(100);
    } finally {
      parse.mockRestore();
    }
  });
});
