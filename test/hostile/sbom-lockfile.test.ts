/**
 * SBOM inputs that are huge or damaged. A lockfile of 5 000 packages (a deep tree, a version
 * conflict installed nested, dev-only packages) gives exactly the installed tree, and with 2 000 the
 * SBOMs list it all and validate, with bounded memory; a lockfile whose entries have the wrong JSON types is the
 * coded SBOM_LOCKFILE_INVALID naming the entry, never a TypeError. (npm.test.ts covers the
 * lockfile's logic on a small tree; npm-crosscheck.test.ts compares with `npm sbom`.)
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newManifest } from '@mcp-release/manifest';
import { collectNpmDependencies, SBOM_CYCLONEDX_FILE, SBOM_SPDX_FILE, sbomStep, validateSbomCycloneDx, validateSbomSpdx } from '../../packages/steps/src/sbom/index.js';
import { releaseContext, runSteps, TEST_PLAN } from '../helpers/context.js';
import { caught, tempDir } from '../helpers/tmp.js';
import { buildFiles } from './release.js';

type Json = Record<string, unknown>;
/** Packages in the lockfile of the inventory test; the sbom step test uses STEP_N (see it for why). */
const N = 5000;
const STEP_N = 2000;
const sri = (s: string): string => `sha512-${createHash('sha512').update(s).digest('base64')}`;
const name = (k: number): string => `p${k}`;

/**
 * The installed tree: app → p0…p49; pK → p(2K+1), p(2K+2) (every pK is reached); every hundredth pK
 * also needs shared@^2 (installed nested under it) while app uses shared@^1 (hoisted); devtool is dev only.
 */
function hugeLock(n = N): { pkg: Json; packages: Record<string, Json> } {
  const pkg = { name: 'app', version: '1.0.0', license: 'MIT', dependencies: { ...Object.fromEntries(Array.from({ length: 50 }, (_, k) => [name(k), '^1.0.0'])), shared: '^1.0.0' }, devDependencies: { devtool: '*' } };
  const packages: Record<string, Json> = {
    '': { name: 'root', workspaces: ['packages/app'] },
    'packages/app': { ...pkg },
    'node_modules/app': { resolved: 'packages/app', link: true },
    'node_modules/shared': { version: '1.0.0', integrity: sri('shared1'), license: 'MIT' },
    'node_modules/devtool': { version: '9.0.0', integrity: sri('devtool'), dev: true, dependencies: { p0: '*' } },
  };
  for (let k = 0; k < n; k += 1) {
    const deps: Record<string, string> = {};
    for (const c of [2 * k + 1, 2 * k + 2]) if (c < n) deps[name(c)] = '^1.0.0';
    if (k % 100 === 0) {
      deps.shared = '^2.0.0';
      packages[`node_modules/${name(k)}/node_modules/shared`] = { version: '2.0.0', integrity: sri('shared2'), license: 'ISC' };
    }
    packages[`node_modules/${name(k)}`] = { version: '1.0.0', resolved: `https://registry.example.invalid/${name(k)}/-/${name(k)}-1.0.0.tgz`, integrity: sri(name(k)), license: 'MIT', dependencies: deps };
  }
  return { pkg, packages };
}

async function project(lock: unknown, pkg: Json = { name: 'app', version: '1.0.0' }): Promise<string> {
  const dir = await tempDir('mcp-release-hostile-sbom-');
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'root', private: true, workspaces: ['packages/app'] }));
  await mkdir(path.join(dir, 'packages', 'app'), { recursive: true });
  await writeFile(path.join(dir, 'packages', 'app', 'package.json'), JSON.stringify(pkg));
  await writeFile(path.join(dir, 'package-lock.json'), typeof lock === 'string' ? lock : JSON.stringify(lock));
  return dir;
}

const plan = [{ name: 'app', version: '1.0.0', path: 'packages/app' }];

describe('a lockfile of thousands of packages', () => {
  it('the npm inventory is exactly the installed tree: every package once, each with its own dependencies', async () => {
    const { pkg, packages } = hugeLock();
    const dir = await project({ name: 'root', lockfileVersion: 3, requires: true, packages }, pkg);
    const inv = await collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined });
    expect(inv.roots).toEqual(['app@1.0.0']);
    expect(inv.packages).toHaveLength(N + 3);
    const byId = new Map(inv.packages.map((p) => [p.id, p]));
    expect(byId.has('devtool@9.0.0')).toBe(false);
    expect(byId.get('app@1.0.0')?.dependsOn).toEqual([...Array.from({ length: 50 }, (_, k) => `${name(k)}@1.0.0`), 'shared@1.0.0'].sort());
    for (let k = 0; k < N; k += 1) {
      const expected = [2 * k + 1, 2 * k + 2].filter((c) => c < N).map((c) => `${name(c)}@1.0.0`);
      if (k % 100 === 0) expected.push('shared@2.0.0');
      const p = byId.get(`${name(k)}@1.0.0`);
      expect(p?.dependsOn, name(k)).toEqual(expected.sort());
      expect(p?.digests[0]?.hex).toBe(createHash('sha512').update(name(k)).digest('hex'));
    }
    expect(byId.get('shared@2.0.0')?.license).toBe('ISC');
  });

  // 2 000 packages: the CycloneDX library's schema validation (uniqueItems over every component and
  // dependency) grows quadratically, about 4 s for 5 000 packages on this machine.
  it('with 2 000 of them, the sbom step writes SPDX and CycloneDX documents that validate and list them all, with bounded memory', async () => {
    const { pkg, packages } = hugeLock(STEP_N);
    const dir = await project({ name: 'root', lockfileVersion: 3, requires: true, packages }, pkg);
    const manifest = newManifest({ ...structuredClone(TEST_PLAN), packages: plan });
    const ctx = await releaseContext(path.join(dir, 'out'), {}, { repoRoot: dir, manifest });
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    let r;
    try {
      r = await runSteps([buildFiles([{ name: 'app-1.0.0.tgz', content: 'tarball', kind: 'npm-tarball', meta: { name: 'app', version: '1.0.0' } }]), sbomStep], ctx);
    } finally {
      clearInterval(timer);
    }
    expect(r.error).toBeUndefined();
    expect(peak - before, 'peak RSS growth').toBeLessThan(400 * 1000 * 1000);
    const spdxText = await readFile(path.join(ctx.releaseDir, SBOM_SPDX_FILE), 'utf8');
    const cdxText = await readFile(path.join(ctx.releaseDir, SBOM_CYCLONEDX_FILE), 'utf8');
    const spdx = JSON.parse(spdxText) as { packages: Array<{ name: string; versionInfo?: string }> };
    expect(validateSbomSpdx(spdx)).toEqual([]);
    expect(await validateSbomCycloneDx(cdxText)).toEqual([]);
    const npmNames = new Set(spdx.packages.map((p) => `${p.name}@${p.versionInfo}`));
    for (let k = 0; k < STEP_N; k += 1) expect(npmNames.has(`${name(k)}@1.0.0`), name(k)).toBe(true);
    expect(npmNames.has('shared@1.0.0') && npmNames.has('shared@2.0.0')).toBe(true);
    expect(npmNames.has('devtool@9.0.0')).toBe(false);
    expect((JSON.parse(cdxText) as { components: unknown[] }).components.length).toBeGreaterThanOrEqual(STEP_N + 2);
  });
});

describe('a lockfile with entries of the wrong JSON types', () => {
  const good = { '': { name: 'root' }, 'packages/app': { name: 'app', version: '1.0.0', dependencies: { a: '^1.0.0' } }, 'node_modules/a': { version: '1.0.0', integrity: sri('a') } };
  it.each<[string, unknown, RegExp]>([
    ['a null entry', { ...good, 'node_modules/a': null }, /node_modules\/a must be object/],
    ['a version that is a number', { ...good, 'node_modules/a': { version: 1 } }, /node_modules\/a\.version must be string/],
    ['a name that is a number', { ...good, 'node_modules/a': { name: 7, version: '1.0.0' } }, /node_modules\/a\.name must be string/],
    ['an integrity that is a number', { ...good, 'node_modules/a': { version: '1.0.0', integrity: 5 } }, /node_modules\/a\.integrity must be string/],
    ['dependencies as text', { ...good, 'node_modules/a': { version: '1.0.0', dependencies: 'b' } }, /node_modules\/a\.dependencies must be object/],
    ['a dependency range that is a number', { ...good, 'packages/app': { name: 'app', version: '1.0.0', dependencies: { a: 1 } } }, /packages\/app\.dependencies\.a must be string/],
    ['link as text', { ...good, 'node_modules/a': { link: 'yes', resolved: 'packages/app' } }, /node_modules\/a\.link must be boolean/],
    ['a resolved link target that is a list', { ...good, 'node_modules/a': { link: true, resolved: ['packages/app'] } }, /node_modules\/a\.resolved must be string/],
    ['packages as a list', [good], /packages must be object/],
  ])('%s: SBOM_LOCKFILE_INVALID naming the entry', async (_what, packages, message) => {
    const dir = await project({ name: 'root', lockfileVersion: 3, packages }, { name: 'app', version: '1.0.0', dependencies: { a: '^1.0.0' } });
    const err = await caught(() => collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined }));
    expect(err).toMatchObject({ code: 'SBOM_LOCKFILE_INVALID', hint: expect.stringContaining('npm install') });
    expect([err.message, ...(err.details ?? [])].join('\n')).toMatch(message);
  });

  it.each(['null', '[]', '"package-lock"', '5'])('a lockfile that is the JSON %s: SBOM_LOCKFILE_INVALID, not "missing"', async (text) => {
    const dir = await project(text);
    expect(await caught(() => collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined }))).toMatchObject({ code: 'SBOM_LOCKFILE_INVALID', message: expect.stringContaining('not a lockfile') });
  });
});
