import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { collectNpmDependencies, parseIntegrity, resolveInLockfile, spdxLicense, withoutCredentials } from './index.js';
import { npmPurl } from './npm.js';

const SRI = (fill: string): string => `sha512-${Buffer.alloc(64, fill).toString('base64')}`;

type Json = Record<string, unknown>;

/** A small project: package.json, package-lock.json (lockfileVersion 3) and workspace package.jsons. */
async function smallProject(pkg: Json, lockPackages: Record<string, Json>, workspaces: Record<string, Json> = {}): Promise<string> {
  const dir = await tempDir('mcp-release-sbom-npm-');
  await writeFile(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  await writeFile(path.join(dir, 'package-lock.json'), JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages: lockPackages }, null, 2));
  for (const [folder, ws] of Object.entries(workspaces)) {
    await mkdir(path.join(dir, folder), { recursive: true });
    await writeFile(path.join(dir, folder, 'package.json'), JSON.stringify(ws, null, 2));
  }
  return dir;
}

const APP = {
  name: 'app',
  version: '1.0.0',
  license: 'MIT',
  dependencies: { a: '^1.0.0', '@s/c': '~3.1.0', '@mcp-release/core': '0.1.0' },
  optionalDependencies: { gone: '^1.0.0' },
  devDependencies: { d: '^1.0.0' },
};

/** app → a → b (nested copy), app → @s/c → b (top copy), peer p; d is dev-only; @mcp-release/core is bundled. */
const LOCK: Record<string, Json> = {
  '': { name: 'app', version: '1.0.0', license: 'MIT', dependencies: APP.dependencies, optionalDependencies: APP.optionalDependencies, devDependencies: APP.devDependencies },
  'node_modules/a': { version: '1.2.0', resolved: 'https://registry.example.invalid/a/-/a-1.2.0.tgz', integrity: SRI('a'), license: '(MIT OR Apache-2.0)', dependencies: { b: '^2.0.0' }, peerDependencies: { p: '>=1' } },
  'node_modules/a/node_modules/b': { version: '2.1.0', resolved: 'https://registry.example.invalid/b/-/b-2.1.0.tgz', integrity: SRI('b'), license: 'ISC' },
  'node_modules/b': { version: '1.0.0', resolved: 'https://registry.example.invalid/b/-/b-1.0.0.tgz', integrity: SRI('B'), license: 'ISC' },
  'node_modules/@s/c': { version: '3.1.4', resolved: 'https://registry.example.invalid/@s/c/-/c-3.1.4.tgz', integrity: `${SRI('c')} sha1-${Buffer.alloc(20, 'c').toString('base64')}`, license: 'SEE LICENSE IN LICENSE', dependencies: { b: '1' } },
  'node_modules/p': { version: '1.5.0', resolved: 'https://registry.example.invalid/p/-/p-1.5.0.tgz', integrity: SRI('p'), license: 'BSD-3-Clause' },
  'node_modules/d': { version: '1.0.0', resolved: 'https://registry.example.invalid/d/-/d-1.0.0.tgz', integrity: SRI('d'), license: 'MIT', dev: true, dependencies: { e: '*' } },
  'node_modules/e': { version: '9.9.9', resolved: 'https://registry.example.invalid/e/-/e-9.9.9.tgz', integrity: SRI('e'), license: 'MIT', dev: true },
  'node_modules/@mcp-release/core': { resolved: 'packages/core', link: true },
  'packages/core': { name: '@mcp-release/core', version: '0.1.0', dependencies: { e: '*' } },
};

const plan = [{ name: 'app', version: '1.0.0', path: '.' }];

describe('npm dependencies from the lockfile', () => {
  it('walks what the tarball installs: node resolution, peers, no dev, no bundled workspaces', async () => {
    const dir = await smallProject(APP, LOCK, { 'packages/core': { name: '@mcp-release/core', version: '0.1.0' } });
    const warnings: string[] = [];
    const inv = await collectNpmDependencies({ repoRoot: dir, packages: plan, warn: (m) => warnings.push(m) });
    expect(inv.roots).toEqual(['app@1.0.0']);
    expect(inv.packages.map((p) => p.id)).toEqual(['@s/c@3.1.4', 'a@1.2.0', 'app@1.0.0', 'b@1.0.0', 'b@2.1.0', 'p@1.5.0']);
    const by = Object.fromEntries(inv.packages.map((p) => [p.id, p]));
    expect(by['app@1.0.0']).toMatchObject({ dependsOn: ['@s/c@3.1.4', 'a@1.2.0'], license: 'MIT', workspace: '', digests: [] });
    // a sees its own nested b 2.1.0; @s/c sees the top-level b 1.0.0
    expect(by['a@1.2.0']?.dependsOn).toEqual(['b@2.1.0', 'p@1.5.0']);
    expect(by['@s/c@3.1.4']?.dependsOn).toEqual(['b@1.0.0']);
    expect(by['@s/c@3.1.4']?.purl).toBe('pkg:npm/%40s/c@3.1.4');
    expect(by['@s/c@3.1.4']?.digests.map((d) => d.algorithm)).toEqual(['sha512', 'sha1']);
    expect(by['a@1.2.0']).toMatchObject({ license: '(MIT OR Apache-2.0)', resolved: 'https://registry.example.invalid/a/-/a-1.2.0.tgz', digests: [{ algorithm: 'sha512', hex: Buffer.alloc(64, 'a').toString('hex') }] });
    // not a valid SPDX expression: NOASSERTION, and a warning that names the package
    expect(by['@s/c@3.1.4']?.license).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/^@s\/c@3\.1\.4 declares the license "SEE LICENSE IN LICENSE", which is not a valid SPDX license expression; .*NOASSERTION/)]);
  });

  it('refuses a lockfile that lacks a dependency package.json declares, and suggests npm install', async () => {
    const dir = await smallProject({ ...APP, dependencies: { ...APP.dependencies, fresh: '^1.0.0' } }, LOCK);
    const err = await caught(() => collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined }));
    expect(err).toMatchObject({ code: 'SBOM_LOCKFILE_OUT_OF_SYNC', message: expect.stringContaining('fresh@^1.0.0'), hint: expect.stringContaining('npm install') });
  });

  it('refuses a locked version outside the declared range, and suggests npm install', async () => {
    // package.json and the lockfile's root entry agree on ^2, but the tree still holds a 1.2.0
    const deps = { ...APP.dependencies, a: '^2.0.0' };
    const dir = await smallProject({ ...APP, dependencies: deps }, { ...LOCK, '': { ...LOCK[''], dependencies: deps } });
    const err = await caught(() => collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined }));
    expect(err).toMatchObject({ code: 'SBOM_LOCKFILE_OUT_OF_SYNC', message: expect.stringContaining('app@1.0.0 needs a@^2.0.0, but package-lock.json has a@1.2.0'), hint: expect.stringContaining('npm install') });

    // package.json changed the range, the lockfile still records the old one
    const dir2 = await smallProject({ ...APP, dependencies: deps }, LOCK);
    const err2 = await caught(() => collectNpmDependencies({ repoRoot: dir2, packages: plan, warn: () => undefined }));
    expect(err2).toMatchObject({ code: 'SBOM_LOCKFILE_OUT_OF_SYNC', hint: expect.stringContaining('npm install') });
    expect(err2.details?.join('\n')).toContain('declares a@^2.0.0 in package.json, package-lock.json records a@^1.0.0');
  });

  it('accepts a version an override in the root package.json forces out of the declared range', async () => {
    const lockPackages = { ...LOCK, 'node_modules/a/node_modules/b': { ...LOCK['node_modules/a/node_modules/b'], version: '3.0.0' } };
    const strict = await smallProject(APP, lockPackages);
    expect(await caught(() => collectNpmDependencies({ repoRoot: strict, packages: plan, warn: () => undefined }))).toMatchObject({ code: 'SBOM_LOCKFILE_OUT_OF_SYNC', message: expect.stringContaining('a@1.2.0 needs b@^2.0.0') });
    const overridden = await smallProject({ ...APP, overrides: { a: { b: '3.0.0' } } }, lockPackages);
    const inv = await collectNpmDependencies({ repoRoot: overridden, packages: plan, warn: () => undefined });
    expect(inv.packages.find((p) => p.id === 'a@1.2.0')?.dependsOn).toContain('b@3.0.0');
  });

  it('refuses a missing lockfile, and a lockfile without the packages map', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'package.json'), JSON.stringify(APP));
    expect(await caught(() => collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined }))).toMatchObject({
      code: 'SBOM_LOCKFILE_MISSING',
      hint: expect.stringContaining('npm install'),
    });
    await writeFile(path.join(dir, 'package-lock.json'), JSON.stringify({ lockfileVersion: 1, dependencies: {} }));
    expect(await caught(() => collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined }))).toMatchObject({
      code: 'SBOM_LOCKFILE_TOO_OLD',
      hint: expect.stringContaining('npm install'),
    });
  });

  it('refuses a damaged integrity rather than dropping the digest', async () => {
    const dir = await smallProject(APP, { ...LOCK, 'node_modules/p': { ...LOCK['node_modules/p'], integrity: 'sha512-AAAA' } });
    expect(await caught(() => collectNpmDependencies({ repoRoot: dir, packages: plan, warn: () => undefined }))).toMatchObject({
      code: 'SBOM_LOCKFILE_INVALID',
      message: 'package-lock.json is damaged: node_modules/p (p@1.5.0) has the integrity sha512-AAAA, which is not a whole digest',
      hint: expect.stringContaining('npm install'),
    });
  });

  it('reads licenses, integrity and purls without guessing', () => {
    expect(spdxLicense('MIT')).toEqual({ expression: 'MIT' });
    expect(spdxLicense('(MIT OR Apache-2.0) AND BSD-3-Clause')).toEqual({ expression: '(MIT OR Apache-2.0) AND BSD-3-Clause' });
    expect(spdxLicense({ type: 'ISC' })).toEqual({ expression: 'ISC' });
    expect(spdxLicense(undefined)).toMatchObject({ expression: undefined, reason: 'declares no license' });
    expect(spdxLicense('mit-ish')).toMatchObject({ expression: undefined });
    expect(spdxLicense('LicenseRef-Proprietary')).toMatchObject({ expression: undefined, reason: expect.stringContaining('outside the SPDX license list') });
    expect(spdxLicense([{ type: 'MIT' }])).toMatchObject({ expression: undefined });
    expect(parseIntegrity(`sha1-${Buffer.alloc(20, 'x').toString('base64')} ${SRI('z')}`).digests.map((d) => d.algorithm)).toEqual(['sha512', 'sha1']);
    expect(parseIntegrity('sha512-AAAA')).toEqual({ digests: [], damaged: ['sha512-AAAA'] });
    expect(withoutCredentials('https://ci:s3cret@npm.example.com/a/-/a-1.0.0.tgz')).toBe('https://npm.example.com/a/-/a-1.0.0.tgz');
    expect(withoutCredentials('https://registry.example.invalid/a/-/a-1.0.0.tgz')).toBe('https://registry.example.invalid/a/-/a-1.0.0.tgz');
    expect(npmPurl('@types/node', '20.1.0')).toBe('pkg:npm/%40types/node@20.1.0');
    expect(npmPurl('ipaddr.js', '1.9.1')).toBe('pkg:npm/ipaddr.js@1.9.1');
    const packages = { 'node_modules/x': {}, 'packages/w/node_modules/y': {}, 'node_modules/y': {}, 'node_modules/x/node_modules/@s/z': {} };
    expect(resolveInLockfile(packages, 'packages/w', 'y')).toBe('packages/w/node_modules/y');
    expect(resolveInLockfile(packages, 'packages/w', 'x')).toBe('node_modules/x');
    expect(resolveInLockfile(packages, 'node_modules/x/node_modules/@s/z', 'y')).toBe('node_modules/y');
    expect(resolveInLockfile(packages, 'node_modules/x', '@s/z')).toBe('node_modules/x/node_modules/@s/z');
    expect(resolveInLockfile(packages, '', 'nope')).toBeUndefined();
  });
});
