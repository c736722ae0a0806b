/**
 * Package names and versions that npm or semver would not accept, committed in a package.json:
 * the plan refuses each one with its own coded error and a fix, before anything is built or
 * published. (plan.test.ts covers one bad name, one short version and a private package; this is
 * the wider table, wrong JSON types included.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from '@mcp-release/pipeline';
import { parsePolicy } from '../../packages/steps/src/policy.js';
import { freezePlan } from '../../packages/steps/src/plan.js';
import { git, makeRepo } from '../helpers/git-repo.js';
import { caught } from '../helpers/tmp.js';

const policy = parsePolicy('version: 1\npackages:\n  - path: pkg\n', 'policy');

let repo: string;
beforeAll(async () => {
  repo = await mkdtemp(path.join(tmpdir(), 'mcp-release-hostile-names-'));
  await makeRepo(repo);
});
afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

/** Commits `text` as pkg/package.json and plans. */
async function planWith(text: string): Promise<Error & { code?: string; hint?: string }> {
  await writeFile(path.join(repo, 'pkg', 'package.json'), text);
  git(repo, 'commit', '-q', '--allow-empty', '-am', 'package.json');
  return caught(() => freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined));
}

const json = (name: unknown, version: unknown): string => JSON.stringify({ name, version });

describe('plan: names npm would refuse', () => {
  it.each<[string, unknown]>([
    ['upper case', 'Demo-Pkg'],
    ['a leading blank', ' demo'],
    ['a trailing blank', 'demo '],
    ['a leading dot', '.hidden'],
    ['a leading underscore', '_private'],
    ['a space', 'demo pkg'],
    ['a colon', 'demo:pkg'],
    ['a shell command', '$(id)'],
    ['a line break', 'demo\npkg'],
    ['a path', '../demo'],
    ['a slash without a scope', 'demo/pkg'],
    ['a scope without a name', '@scope/'],
    ['an upper-case scope', '@Scope/pkg'],
    ['a reserved name', 'node_modules'],
    ['non-ASCII letters', 'démo'],
    ['215 characters', `a${'b'.repeat(214)}`],
    ['a number', 42],
    ['a list', ['demo-pkg']],
    ['an object', { name: 'demo-pkg' }],
    ['true', true],
  ])('%s: PLAN_PACKAGE_NAME_INVALID', async (_what, name) => {
    const err = await planWith(json(name, '1.0.0'));
    expect(err).toMatchObject({ code: 'PLAN_PACKAGE_NAME_INVALID', hint: expect.stringContaining('npm names are lower case') });
    expect(err.message).not.toMatch(/[\r\n]/);
  });

  it.each<[string, unknown]>([
    ['an empty name', ''],
    ['a null name', null],
    ['zero', 0],
  ])('%s: PLAN_PACKAGE_INVALID', async (_what, name) => {
    expect(await planWith(json(name, '1.0.0'))).toMatchObject({ code: 'PLAN_PACKAGE_INVALID', hint: expect.stringContaining('name') });
  });
});

describe('plan: versions that are not one exact semver version', () => {
  it.each<[string, unknown]>([
    ['a v prefix', 'v1.2.3'],
    ['an = prefix', '=1.2.3'],
    ['a leading blank', ' 1.2.3'],
    ['a trailing line break', '1.2.3\n'],
    ['a leading zero', '01.2.3'],
    ['a prerelease with a leading zero', '1.2.3-01'],
    ['two parts', '1.2'],
    ['four parts', '1.2.3.4'],
    ['a range', '^1.2.3'],
    ['two ranges', '1.2.3 || 2.0.0'],
    ['a dist-tag', 'latest'],
    ['an empty prerelease', '1.2.3-'],
    ['empty build metadata', '1.2.3+'],
    ['a number past 2^53', '99999999999999999999.0.0'],
    ['over 256 characters', `1.2.3-${'a'.repeat(300)}`],
    ['a number', 1],
    ['a list', ['1.2.3']],
    ['an object', { major: 1 }],
  ])('%s: PLAN_VERSION_INVALID', async (_what, version) => {
    const err = await planWith(json('demo-pkg', version));
    expect(err).toMatchObject({ code: 'PLAN_VERSION_INVALID', hint: expect.stringContaining('1.2.3') });
    expect(err.message).not.toMatch(/[\r\n]/);
  });
});

describe('plan: a package.json that is not a package', () => {
  it.each(['[]', '"demo-pkg"', 'null', '5', '{', '', '\ufeff{"name":"demo-pkg","version":"1.0.0"}'])('%j: PLAN_PACKAGE_UNREADABLE', async (text) => {
    expect(await planWith(text)).toMatchObject({ code: 'PLAN_PACKAGE_UNREADABLE', hint: expect.stringContaining('package.json') });
  });

  it('"private" in any truthy form: PLAN_PACKAGE_PRIVATE', async () => {
    for (const flag of [true, 'true', 'yes', 1]) {
      expect(await planWith(JSON.stringify({ name: 'demo-pkg', version: '1.0.0', private: flag }))).toMatchObject({ code: 'PLAN_PACKAGE_PRIVATE' });
    }
  });
});
