import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, caught, tempDir } from '../../../../test/helpers/tmp.js';
import { lintWorkflowFiles, lintWorkflowText } from '../lint-workflows/index.js';
import { ACTION_PINS, TOOLKIT_ACTIONS, TOOLKIT_REPOSITORY } from './pins.js';
import { WORKFLOW_TEMPLATES, findTemplatesDir, renderTemplate, renderTemplates, resolveRenderOptions, type RenderOptions } from './render.js';
import { ADOPTER, SELF, runScripts, workflowDoc } from './testing.js';

const TEMPLATES = path.join(REPO_ROOT, 'workflows');

async function lintRendered(options: RenderOptions): Promise<Awaited<ReturnType<typeof lintWorkflowFiles>>> {
  const dir = await tempDir();
  const rendered = await renderTemplates(options);
  for (const name of WORKFLOW_TEMPLATES) await writeFile(path.join(dir, name), rendered[name]);
  return lintWorkflowFiles([dir], { root: dir });
}

describe('renderTemplate', () => {
  const values = { owner: 'acme', repo: 'server', flag: 'on', off: undefined };

  it('fills {{name}} and leaves GitHub expressions alone', () => {
    const out = renderTemplate('a: {{owner}}/{{repo}}\nb: ${{ github.ref }} ${{github.sha}}\n', values, 't.yml');
    expect(out).toBe('a: acme/server\nb: ${{ github.ref }} ${{github.sha}}\n');
  });

  it('keeps a section when its value is set and drops it, control lines included, when not', () => {
    const text = 'x: 1\n  {{#flag}}\ny: {{flag}}\n  {{/flag}}\n{{#off}}\nz: 3\n{{/off}}\nw: 4\n';
    expect(renderTemplate(text, values, 't.yml')).toBe('x: 1\ny: on\nw: 4\n');
  });

  it.each([
    ['an unknown name', 'a: {{nope}}', /{{nope}} names no known value/],
    ['a name with spaces', 'a: {{ owner }}', /is not a placeholder/],
    ['a section name used as a value', 'a: {{off}}', /is a section name/],
    ['an unclosed section', '{{#flag}}\na: 1', /{{#flag}} is never closed/],
    ['a section closed by another name', '{{#flag}}\n{{/off}}', /{{\/off}} closes {{#flag}}/],
    ['a stray {{', 'a: {{owner', /an unfilled "{{" is left/],
    ['an unknown section', '{{#nope}}\n{{/nope}}', /names no known value/],
  ])('refuses %s with a coded error naming the line', (_what, text, message) => {
    let err: unknown;
    try {
      renderTemplate(`first: line\n${text}\n`, values, 't.yml');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'INIT_TEMPLATE_INVALID', message: expect.stringMatching(message) });
    expect((err as Error).message).toMatch(/t\.yml, line [23]/);
  });
});

describe('resolveRenderOptions', () => {
  it('defaults mcp-release itself to its own actions, its CLI from source and the check-dist step', () => {
    expect(resolveRenderOptions(SELF)).toMatchObject({ self: true, toolkit: 'local', checkDist: 'node scripts/build.mjs --check', ciNodeVersions: ['20', '24'], defaultBranch: 'main' });
    expect(resolveRenderOptions(ADOPTER)).toMatchObject({ self: false, checkDist: undefined, ciNodeVersions: ['24'] });
  });

  it('refuses an adopting repository without a toolkit commit: its actions must be pinned', () => {
    expect(() => resolveRenderOptions({ owner: 'acme', repo: 'server' })).toThrow(expect.objectContaining({ code: 'INIT_TOOLKIT_REF_MISSING' }));
  });

  it.each<[string, RenderOptions]>([
    ['an owner with a slash', { ...ADOPTER, owner: 'acme/evil' }],
    ['an owner starting with a hyphen', { ...ADOPTER, owner: '-acme' }],
    ['a repository name with a line break', { ...ADOPTER, repo: 'server\non: push' }],
    ['a repository named ..', { ...ADOPTER, repo: '..' }],
    ['a branch with ..', { ...ADOPTER, defaultBranch: 'main..x' }],
    ['a branch with a space', { ...ADOPTER, defaultBranch: 'main branch' }],
    ['a Node.js version that is a word', { ...ADOPTER, nodeVersion: 'latest' }],
    ['no CI Node.js version', { ...ADOPTER, ciNodeVersions: [] }],
    ['a toolkit tag instead of a commit', { ...ADOPTER, toolkit: { sha: 'v0.1.0', version: '0.1.0' } }],
    ['a short toolkit commit', { ...ADOPTER, toolkit: { sha: '4f1e2d3', version: '0.1.0' } }],
    ['a toolkit version that is not semver', { ...ADOPTER, toolkit: { sha: 'a'.repeat(40), version: 'latest' } }],
    ['a check-dist command with an expression', { ...ADOPTER, checkDist: 'echo ${{ github.event.issue.title }}' }],
    ['a check-dist command with a comment', { ...ADOPTER, checkDist: 'npm run check # x' }],
  ])('refuses %s (nothing that could break the YAML is written)', (_what, options) => {
    expect(() => resolveRenderOptions(options)).toThrow(expect.objectContaining({ code: 'INIT_OPTIONS_INVALID' }));
  });
});

describe('the templates', () => {
  it('are found next to the module, in the repository', async () => {
    expect(await findTemplatesDir()).toBe(`${TEMPLATES}${path.sep}`);
  });

  it.each([
    ['an adopting repository', ADOPTER],
    ['mcp-release itself', SELF],
  ])('render for %s to YAML that lint-workflows finds nothing in, not even a warning', async (_who, options) => {
    const rendered = await renderTemplates(options);
    for (const name of WORKFLOW_TEMPLATES) {
      expect(() => workflowDoc(rendered[name])).not.toThrow();
      const alone = lintWorkflowText(rendered[name], name, { releaseWorkflows: ['release.yml'] });
      expect(alone.findings).toEqual([]);
    }
    // Together: release.yml is the release workflow and sign.yml, which it calls, is one too.
    const report = await lintRendered(options);
    expect(report.findings).toEqual([]);
    expect(report.releaseWorkflows).toEqual(['release.yml', 'sign.yml']);
    expect(report.files).toEqual(['ci.yml', 'release.yml', 'sign.yml']);
  });

  it('the zero-findings check can fail: an unpinned action and an input in a script are found', async () => {
    const release = (await renderTemplates(ADOPTER))['release.yml'];
    const sha = ACTION_PINS['actions/checkout'].sha;
    const unpinned = release.replace(`actions/checkout@${sha} # v4.2.2`, 'actions/checkout@v4');
    expect(lintWorkflowText(unpinned, 'release.yml').findings.map((f) => f.ruleId)).toContain('MR002');
    const injected = release.replace('if [[ -z "$PACKAGES" ]]; then exit 0; fi', 'if [[ -z "${{ inputs.packages }}" ]]; then exit 0; fi');
    expect(injected).not.toBe(release);
    expect(lintWorkflowText(injected, 'release.yml').findings.map((f) => f.ruleId)).toEqual(['MR001']);
  });

  it('never expand an expression inside a run: script (dispatch inputs go through env:)', async () => {
    for (const options of [ADOPTER, SELF]) {
      const rendered = await renderTemplates(options);
      for (const name of WORKFLOW_TEMPLATES) {
        const scripts = runScripts(workflowDoc(rendered[name]));
        expect(scripts.length).toBeGreaterThan(0);
        for (const s of scripts) expect(s.run, `${name} ${s.where}`).not.toContain('${{');
      }
      const plan = workflowDoc(rendered['release.yml']).jobs.plan;
      const viaEnv = (plan?.steps ?? []).filter((s) => Object.values(s.env ?? {}).some((v) => v.includes('inputs.packages')));
      expect(viaEnv.map((s) => s.name ?? s.id)).toEqual(['Check the packages input', 'plan', 'Check the plan against the packages input']);
    }
  });

  it('release.yml: dispatch only, one release at a time, each job with only the permissions it needs', async () => {
    const doc = workflowDoc((await renderTemplates(ADOPTER))['release.yml']);
    expect(Object.keys(doc.on as object)).toEqual(['workflow_dispatch']);
    expect((doc.on as { workflow_dispatch: { inputs: Record<string, { type: string }> } }).workflow_dispatch.inputs).toMatchObject({ 'dry-run': { type: 'boolean' }, packages: { type: 'string' } });
    expect(doc.concurrency).toEqual({ group: 'release', 'cancel-in-progress': false });
    expect(doc.permissions).toEqual({ contents: 'read' });
    const jobs = doc.jobs;
    expect(Object.keys(jobs)).toEqual(['plan', 'build-native', 'build-server', 'merge', 'gates', 'attest', 'publish', 'release']);
    for (const id of ['plan', 'build-native', 'build-server', 'merge', 'gates']) expect(jobs[id]?.permissions, id).toEqual({ contents: 'read' });
    expect(jobs.attest).toMatchObject({ uses: './.github/workflows/sign.yml', permissions: { contents: 'read', 'id-token': 'write' }, needs: 'gates' });
    expect(jobs.publish).toMatchObject({ environment: 'release', permissions: { contents: 'write', 'id-token': 'write' }, needs: 'attest', if: '${{ !inputs.dry-run }}' });
    expect(jobs.release).toMatchObject({ environment: 'release', permissions: { contents: 'write' }, needs: 'publish', if: '${{ !inputs.dry-run }}' });
    expect(jobs.merge?.needs).toEqual(['build-native', 'build-server']);
    expect(jobs['build-native']?.strategy?.matrix?.include).toEqual([
      { platform: 'linux-x64', runner: 'ubuntu-24.04' },
      { platform: 'linux-arm64', runner: 'ubuntu-24.04-arm' },
      { platform: 'darwin-arm64', runner: 'macos-15' },
    ]);
    const usesOf = (id: string): string[] => (jobs[id]?.steps ?? []).flatMap((s) => (s.uses ? [s.uses.replace(/@.*$/, '')] : []));
    const own = (step: string): string => `${TOOLKIT_REPOSITORY}/actions/${step}`;
    expect(usesOf('publish').filter((u) => u.startsWith(TOOLKIT_REPOSITORY))).toEqual([own('release-github'), own('publish-npm'), own('push-tag')]);
    expect(usesOf('release').filter((u) => u.startsWith(TOOLKIT_REPOSITORY))).toEqual([own('undraft')]);
    expect(usesOf('gates').filter((u) => u.startsWith(TOOLKIT_REPOSITORY))).toEqual([own('smoke-mcp'), own('mcp-consistency'), own('gate-golden')]);
    const merge = (jobs.merge?.steps ?? []).map((s) => s.run ?? '').join('\n');
    expect(merge).toContain('npx --no-install mcp-release merge-manifests --out "$RUNNER_TEMP/out"');
  });

  it('sign.yml: a reusable workflow that signs in one job with id-token and builds nothing', async () => {
    const text = (await renderTemplates(ADOPTER))['sign.yml'];
    const doc = workflowDoc(text);
    expect(Object.keys(doc.on as object)).toEqual(['workflow_call']);
    expect(doc.permissions).toEqual({ contents: 'read' });
    expect(Object.keys(doc.jobs)).toEqual(['sign']);
    const sign = doc.jobs.sign;
    expect(sign?.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    const own = (sign?.steps ?? []).flatMap((s) => (s.uses?.startsWith(TOOLKIT_REPOSITORY) ? [s.uses.replace(/@.*$/, '').split('/').pop()] : []));
    expect(own).toEqual(['sbom', 'verify-script', 'checksums', 'sign', 'provenance', 'attest-gate', 'verify']);
    for (const s of runScripts(doc)) expect(s.run).not.toMatch(/\bnpm\b|\bnpx\b|\bnode\b|meson|ninja/);
    expect(text).toContain('https://github.com/acme-media/vmaf-server/.github/workflows/sign.yml@refs/heads/main');
  });

  it('pin every third-party and toolkit action by commit with the tag as a comment', async () => {
    const rendered = await renderTemplates(ADOPTER);
    const all = WORKFLOW_TEMPLATES.map((n) => rendered[n]).join('\n');
    const uses = [...all.matchAll(/^\s*(?:- )?uses: (\S+)(.*)$/gm)];
    expect(uses.length).toBeGreaterThan(20);
    for (const [, ref = '', rest = ''] of uses) {
      if (ref.startsWith('./')) continue;
      expect(ref).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
      expect(rest).toMatch(/^ # v\d+\.\d+\.\d+$/);
    }
    expect(all).toContain(`${TOOLKIT_REPOSITORY}/actions/plan@${'4f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4'} # v0.1.0`);
  });

  it('mcp-release itself uses its own actions of the same commit and its CLI from source', async () => {
    const rendered = await renderTemplates(SELF);
    expect(rendered['release.yml']).toContain('uses: ./actions/plan\n');
    expect(rendered['release.yml']).not.toContain(`${TOOLKIT_REPOSITORY}/actions`);
    expect(rendered['ci.yml']).toContain('run: node packages/cli/dist/mcp-release.mjs lint-workflows .github/workflows');
    expect(rendered['ci.yml']).toContain('run: node scripts/build.mjs --check');
    expect(workflowDoc(rendered['ci.yml']).jobs.test?.strategy?.matrix).toEqual({ node: ['20', '24'] });
  });

  it('ci.yml: pull requests and pushes to the default branch, check-dist only when asked for', async () => {
    const plain = await renderTemplates({ ...ADOPTER, defaultBranch: 'trunk' });
    const doc = workflowDoc(plain['ci.yml']);
    expect(doc.on).toEqual({ pull_request: null, push: { branches: ['trunk'] } });
    expect(doc.permissions).toEqual({ contents: 'read' });
    const runs = runScripts(doc).map((s) => s.run);
    expect(runs).toEqual(expect.arrayContaining(['npm ci', 'npm test', 'npx --no-install mcp-release lint-workflows .github/workflows', 'npx --no-install mcp-release check-changesets --base "origin/$BASE_REF"']));
    expect(plain['ci.yml']).not.toContain('check-dist');
    expect(plain['ci.yml']).not.toMatch(/Check that the committed bundles/);
    const changesets = doc.jobs.checks?.steps?.find((s) => s.run?.includes('check-changesets'));
    expect(changesets).toMatchObject({ if: "${{ github.event_name == 'pull_request' }}", env: { BASE_REF: '${{ github.base_ref }}' } });

    const withCheck = await renderTemplates({ ...ADOPTER, checkDist: 'npm run check-dist' });
    expect(runScripts(workflowDoc(withCheck['ci.yml'])).map((s) => s.run)).toContain('npm run check-dist');
  });

  it('the pin table: real-looking commits, every entry used, and every toolkit action exists', async () => {
    const texts = await Promise.all(WORKFLOW_TEMPLATES.map((n) => readFile(path.join(TEMPLATES, n), 'utf8')));
    const used = new Set(texts.flatMap((t) => [...t.matchAll(/\{\{pin:([^}]+)\}\}/g)].map((m) => m[1])));
    expect([...used].sort()).toEqual(Object.keys(ACTION_PINS).sort());
    for (const pin of Object.values(ACTION_PINS)) {
      expect(pin.sha).toMatch(/^[0-9a-f]{40}$/);
      expect(pin.version).toMatch(/^v\d+\.\d+\.\d+$/);
    }
    const actions = new Set(texts.flatMap((t) => [...t.matchAll(/\{\{action:([^}]+)\}\}/g)].map((m) => m[1])));
    for (const a of actions) expect(TOOLKIT_ACTIONS).toContain(a);
    for (const a of TOOLKIT_ACTIONS) expect((await stat(path.join(REPO_ROOT, 'actions', a, 'action.yml'))).isFile(), a).toBe(true);
  });

  it('a template with an unknown placeholder, or one that renders to broken YAML, is refused', async () => {
    const dir = await tempDir();
    for (const name of WORKFLOW_TEMPLATES) await writeFile(path.join(dir, name), await readFile(path.join(TEMPLATES, name), 'utf8'));
    await writeFile(path.join(dir, 'ci.yml'), 'name: ci\non: push\njobs:\n  a:\n    runs-on: {{runner}}\n');
    expect(await caught(() => renderTemplates({ ...ADOPTER, templatesDir: dir }))).toMatchObject({ code: 'INIT_TEMPLATE_INVALID', message: expect.stringContaining('{{runner}}') });
    await writeFile(path.join(dir, 'ci.yml'), 'name: ci\non: push\njobs:\n  a: [unclosed\n');
    expect(await caught(() => renderTemplates({ ...ADOPTER, templatesDir: dir }))).toMatchObject({ code: 'INIT_TEMPLATE_INVALID', message: expect.stringContaining('does not parse') });
  });
});
