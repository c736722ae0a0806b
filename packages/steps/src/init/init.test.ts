import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, caught, tempDir } from '../../../../test/helpers/tmp.js';
import { lintWorkflowFiles } from '../lint-workflows/index.js';
import { loadPolicy } from '../policy.js';
import type * as InitModule from './index.js';
import { initRepository, type InitOptions } from './init.js';
import { WORKFLOW_TEMPLATES, renderTemplates } from './render.js';
import { signerIdentity, starterPolicy } from './starter-policy.js';
import { ADOPTER } from './testing.js';

const FILES = ['.github/workflows/release.yml', '.github/workflows/sign.yml', '.github/workflows/ci.yml', 'policies/release-policy.yaml'];

/** An empty repository with a server package and a second package. */
async function repo(extra: Record<string, unknown> = {}): Promise<string> {
  const root = await tempDir();
  for (const [folder, pkg] of [
    ['packages/server', { name: 'acme-vmaf-server', version: '1.0.0', ...extra }],
    ['packages/cli', { name: '@acme/vmaf-cli', version: '1.0.0' }],
  ] as const) {
    await mkdir(path.join(root, folder), { recursive: true });
    await writeFile(path.join(root, folder, 'package.json'), JSON.stringify(pkg));
  }
  return root;
}

/** Every file under a folder, relative, sorted. */
async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name))).sort();
}

const options = (repoRoot: string, more: Partial<InitOptions> = {}): InitOptions => ({ ...ADOPTER, repoRoot, packages: ['packages/server', 'packages/cli/'], ...more });

describe('initRepository', () => {
  it('writes the three workflows and a starter policy that the schema accepts', async () => {
    const root = await repo();
    const result = await initRepository(options(root, { nativeSource: 'vendor/vmaf' }));
    expect(result.written).toEqual(FILES);
    expect(result.replaced).toEqual([]);
    expect(await tree(root)).toEqual([...FILES, 'packages/cli/package.json', 'packages/server/package.json'].sort());
    const rendered = await renderTemplates(ADOPTER);
    for (const name of WORKFLOW_TEMPLATES) expect(await readFile(path.join(root, '.github/workflows', name), 'utf8')).toBe(rendered[name]);

    const policy = await loadPolicy(path.join(root, 'policies/release-policy.yaml'));
    expect(policy).toMatchObject({
      version: 1,
      release: { tag: 'v{version}', branch: 'main', repository: 'acme-media/vmaf-server' },
      packages: [{ path: 'packages/server' }, { path: 'packages/cli' }],
      mcp: { package: 'acme-vmaf-server' },
      native: { source: 'vendor/vmaf', models: 'model' },
      signer: { repository: 'acme-media/vmaf-server', workflow: 'sign.yml', ref: 'refs/heads/main', issuer: 'https://token.actions.githubusercontent.com' },
      trustedPublishers: [
        { package: 'acme-vmaf-server', repository: 'acme-media/vmaf-server', workflow: 'release.yml', environment: 'release' },
        { package: '@acme/vmaf-cli', repository: 'acme-media/vmaf-server', workflow: 'release.yml', environment: 'release' },
      ],
      gates: { golden: { table: 'policies/golden-scores.json', fixtures: 'fixtures/vmaf' } },
    });
    expect(result.nextSteps.join('\n')).toContain('Bind the trusted publisher of @acme/vmaf-cli on the npm registry: repository acme-media/vmaf-server, workflow release.yml, environment release');
    expect(result.nextSteps.join('\n')).toContain(signerIdentity('acme-media', 'vmaf-server'));

    const lint = await lintWorkflowFiles([], { root });
    expect(lint.findings).toEqual([]);
  });

  it('refuses to overwrite existing files, lists them and changes nothing; --force replaces them', async () => {
    const root = await repo();
    await mkdir(path.join(root, '.github/workflows'), { recursive: true });
    await writeFile(path.join(root, '.github/workflows/ci.yml'), 'mine\n');
    await mkdir(path.join(root, 'policies'));
    await writeFile(path.join(root, 'policies/release-policy.yaml'), 'also mine\n');
    const before = await tree(root);

    const err = await caught(() => initRepository(options(root)));
    expect(err).toMatchObject({ code: 'INIT_FILES_EXIST', details: ['.github/workflows/ci.yml', 'policies/release-policy.yaml'], hint: expect.stringContaining('--force') });
    expect(await tree(root)).toEqual(before);
    expect(await readFile(path.join(root, '.github/workflows/ci.yml'), 'utf8')).toBe('mine\n');

    const forced = await initRepository(options(root, { force: true }));
    expect(forced.replaced).toEqual(['.github/workflows/ci.yml', 'policies/release-policy.yaml']);
    expect(await readFile(path.join(root, '.github/workflows/ci.yml'), 'utf8')).toBe((await renderTemplates(ADOPTER))['ci.yml']);
  });

  it('a second init over its own output is refused too (nothing is silently regenerated)', async () => {
    const root = await repo();
    await initRepository(options(root));
    expect(await caught(() => initRepository(options(root)))).toMatchObject({ code: 'INIT_FILES_EXIST', details: FILES });
  });

  it('--workflows-only writes the workflows and leaves the policy alone', async () => {
    const root = await repo();
    await mkdir(path.join(root, 'policies'));
    await writeFile(path.join(root, 'policies/release-policy.yaml'), 'kept\n');
    const result = await initRepository({ ...ADOPTER, repoRoot: root, workflowsOnly: true });
    expect(result.written).toEqual(FILES.slice(0, 3));
    expect(await readFile(path.join(root, 'policies/release-policy.yaml'), 'utf8')).toBe('kept\n');
  });

  it.each<[string, (root: string) => Promise<InitOptions>, string]>([
    ['a private package', async () => options(await repo({ private: true })), 'INIT_PACKAGE_PRIVATE'],
    ['a folder without package.json', async (root) => options(root, { packages: ['packages/nothing'] }), 'INIT_PACKAGE_MISSING'],
    ['a package folder outside the repository', async (root) => options(root, { packages: ['../elsewhere'] }), 'INIT_OPTIONS_INVALID'],
    ['a package listed twice', async (root) => options(root, { packages: ['packages/server', './packages/server'] }), 'INIT_PACKAGES_DUPLICATE'],
    ['no package', async (root) => options(root, { packages: [] }), 'INIT_PACKAGES_MISSING'],
    ['an MCP package that is not released', async (root) => options(root, { mcpPackage: 'other' }), 'INIT_MCP_PACKAGE_UNKNOWN'],
    ['an adopter without a toolkit commit', async (root) => ({ owner: 'acme', repo: 'server', repoRoot: root, packages: ['packages/server'] }), 'INIT_TOOLKIT_REF_MISSING'],
    ['a folder where a workflow goes', async (root) => {
      await mkdir(path.join(root, '.github/workflows/release.yml'), { recursive: true });
      return options(root, { force: true });
    }, 'INIT_TARGET_NOT_FILE'],
    ['a missing templates folder', async (root) => options(root, { templatesDir: path.join(root, 'no-templates') }), 'INIT_TEMPLATES_MISSING'],
  ])('refuses %s and writes nothing', async (_what, make, code) => {
    const root = await repo();
    const opts = await make(root);
    const before = await tree(opts.repoRoot);
    expect(await caught(() => initRepository(opts))).toMatchObject({ code });
    expect(await tree(opts.repoRoot)).toEqual(before);
  });

  it('a write that fails half-way leaves no file and no temporary file behind', async () => {
    const root = await repo();
    // policies/ is a file: the workflows are staged, then the policy cannot be.
    await writeFile(path.join(root, 'policies'), 'not a folder\n');
    expect(await caught(() => initRepository(options(root)))).toMatchObject({ code: 'INIT_WRITE_FAILED', hint: expect.stringContaining('nothing was changed') });
    expect(await tree(root)).toEqual(['packages/cli/package.json', 'packages/server/package.json', 'policies']);
  });

  it('refuses a repository folder that does not exist', async () => {
    const root = await tempDir();
    expect(await caught(() => initRepository(options(path.join(root, 'missing'))))).toMatchObject({ code: 'INIT_REPO_MISSING' });
  });
});

describe('starterPolicy', () => {
  it('escapes the branch in the signer ref, which is a regular expression', () => {
    const { policy } = starterPolicy({ owner: 'acme', repo: 'server', defaultBranch: 'release/1.x', packages: [{ path: '.', name: 'srv' }] });
    expect(policy.signer?.ref).toBe('refs/heads/release/1\\.x');
    expect(new RegExp(`^${policy.signer?.ref}$`).test('refs/heads/release/1.x')).toBe(true);
    expect(new RegExp(`^${policy.signer?.ref}$`).test('refs/heads/release/1yx')).toBe(false);
    expect(policy.packages).toEqual([{ path: '.' }]);
  });
});

describe('the templates when mcp-release is bundled', () => {
  it('are found beside the bundle (dist/workflows), and their absence is a coded error', async () => {
    const dist = path.join(await tempDir(), 'package', 'dist');
    await build({
      entryPoints: [path.join(REPO_ROOT, 'packages/steps/src/init/index.ts')],
      outfile: path.join(dist, 'init.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
      logLevel: 'silent',
    });
    const bundled = (await import(pathToFileURL(path.join(dist, 'init.mjs')).href)) as typeof InitModule;
    expect(await caught(() => bundled.renderTemplates(ADOPTER))).toMatchObject({ code: 'INIT_TEMPLATES_MISSING', details: expect.arrayContaining([`looked in ${path.join(dist, 'workflows')}${path.sep}`]) });

    await cp(path.join(REPO_ROOT, 'workflows'), path.join(dist, 'workflows'), { recursive: true });
    expect(await bundled.findTemplatesDir()).toBe(`${path.join(dist, 'workflows')}${path.sep}`);
    expect(await bundled.renderTemplates(ADOPTER)).toEqual(await renderTemplates(ADOPTER));
  });
});
