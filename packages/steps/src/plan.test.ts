import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exec } from '@mcp-release/pipeline';
import { newManifest } from '@mcp-release/manifest';
import { releaseContext, runSteps } from '../../../test/helpers/context.js';
import { git, makeRepo } from '../../../test/helpers/git-repo.js';
import { caught, tempDir } from '../../../test/helpers/tmp.js';
import { freezePlan, planStep } from './plan.js';
import { parsePolicy } from './policy.js';

const policy = parsePolicy('version: 1\nrelease:\n  tag: "v{version}-lusoris.1"\npackages:\n  - path: pkg\n', 'policy');

describe('plan', () => {
  it('freezes packages, versions, tag, commit and the commit time', async () => {
    const repo = await tempDir();
    const commit = await makeRepo(repo);
    const plan = await freezePlan(repo, policy, { exec, env: {}, now: () => new Date(0) }, { source: 'commit' });
    expect(plan).toEqual({
      commit,
      dirty: false,
      timestamp: '2026-02-03T04:05:06Z',
      epoch: Date.parse('2026-02-03T04:05:06Z') / 1000,
      timestampSource: 'commit',
      tag: 'v1.2.3-lusoris.1',
      packages: [{ name: 'demo-pkg', version: '1.2.3', path: 'pkg', distTag: 'latest' }],
    });
  });

  it('reads the clock once when asked, and SOURCE_DATE_EPOCH wins', async () => {
    const repo = await tempDir();
    await makeRepo(repo);
    let reads = 0;
    const now = (): Date => {
      reads += 1;
      return new Date('2026-05-06T23:59:59.900Z');
    };
    expect((await freezePlan(repo, policy, { exec, env: {}, now }, { source: 'clock' })).timestamp).toBe('2026-05-06T23:59:59Z');
    expect(reads).toBe(1);
    expect((await freezePlan(repo, policy, { exec, env: { SOURCE_DATE_EPOCH: '86400' }, now }, { source: 'clock' })).timestamp).toBe('1970-01-02T00:00:00Z');
    expect(await caught(() => freezePlan(repo, policy, { exec, env: { SOURCE_DATE_EPOCH: 'yesterday' }, now }, undefined))).toMatchObject({ code: 'PLAN_BAD_SOURCE_DATE_EPOCH' });
  });

  it('refuses private packages, invalid versions and folders outside git', async () => {
    const repo = await tempDir();
    await makeRepo(repo, { version: '1.0' });
    expect(await caught(() => freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined))).toMatchObject({ code: 'PLAN_VERSION_INVALID' });
    await writeFile(path.join(repo, 'pkg', 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0', private: true }));
    git(repo, 'commit', '-qam', 'private');
    expect(await caught(() => freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined))).toMatchObject({ code: 'PLAN_PACKAGE_PRIVATE' });
    const bare = await tempDir();
    expect(await caught(() => freezePlan(bare, policy, { exec, env: {}, now: () => new Date() }, undefined))).toMatchObject({ code: 'PLAN_NOT_GIT' });
  });

  it('the plan step refuses a checkout that moved on since the plan', async () => {
    const repo = await tempDir();
    await makeRepo(repo);
    const plan = await freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined);
    const out = await tempDir();
    const ctx = await releaseContext(out, { policy }, { repoRoot: repo, manifest: newManifest(plan) });
    expect((await runSteps([planStep], ctx)).ok).toBe(true);

    await writeFile(path.join(repo, 'pkg', 'package.json'), JSON.stringify({ name: 'demo-pkg', version: '1.2.4' }));
    const changed = await runSteps([planStep], ctx);
    expect(changed.error).toMatchObject({ code: 'PLAN_VERSION_NOT_COMMITTED' });

    git(repo, 'commit', '-qam', 'bump');
    const moved = await runSteps([planStep], ctx);
    expect(moved.error).toMatchObject({ code: 'PLAN_COMMIT_MISMATCH', hint: expect.stringContaining(plan.commit) });
  });

  it('reads versions from the commit and refuses a plan for a version that is not committed', async () => {
    const repo = await tempDir();
    await makeRepo(repo, { version: '1.0.1' });
    await writeFile(path.join(repo, 'pkg', 'package.json'), JSON.stringify({ name: 'demo-pkg', version: '1.0.10' }));
    const err = await caught(() => freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined));
    expect(err).toMatchObject({ code: 'PLAN_VERSION_NOT_COMMITTED', message: expect.stringContaining('demo-pkg@1.0.1 is committed'), hint: expect.stringContaining('mcp-release version') });
  });

  it('refuses a commit that is not on the default branch of the remote (phantom versions)', async () => {
    const repo = await tempDir();
    const first = await makeRepo(repo);
    const remote = await tempDir();
    git(remote, 'init', '-q', '--bare');
    git(repo, 'remote', 'add', 'origin', remote);
    git(repo, 'push', '-q', 'origin', 'main');
    const onMain = await freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined);
    expect(onMain.branch).toEqual({ name: 'main', remote: 'origin', head: first });

    // A version bump that lives only on a side commit (as on an orphaned tag commit).
    git(repo, 'checkout', '-q', '-b', 'release-bump');
    await writeFile(path.join(repo, 'pkg', 'package.json'), JSON.stringify({ name: 'demo-pkg', version: '1.2.4' }));
    git(repo, 'commit', '-qam', 'bump on a side branch');
    const err = await caught(() => freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined));
    expect(err).toMatchObject({ code: 'COMMIT_NOT_ON_DEFAULT_BRANCH', hint: expect.stringContaining('merge') });

    // Merged and pushed, the same commit is releasable.
    git(repo, 'checkout', '-q', 'main');
    git(repo, 'merge', '-q', '--ff-only', 'release-bump');
    git(repo, 'push', '-q', 'origin', 'main');
    expect((await freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined)).packages[0]?.version).toBe('1.2.4');

    // A policy naming a branch the remote does not have says so.
    const other = parsePolicy('version: 1\nrelease:\n  branch: trunk\npackages:\n  - path: pkg\n', 'policy');
    expect(await caught(() => freezePlan(repo, other, { exec, env: {}, now: () => new Date() }, undefined))).toMatchObject({ code: 'GIT_BRANCH_NOT_FOUND' });
  });

  it('numbers releases of one version from the remote tags ({n}) and dates tags from the plan ({date})', async () => {
    const repo = await tempDir();
    await makeRepo(repo, { version: '3.0.5' });
    const remote = await tempDir();
    git(remote, 'init', '-q', '--bare');
    git(repo, 'remote', 'add', 'origin', remote);
    git(repo, 'push', '-q', 'origin', 'main');
    const seed = parsePolicy('version: 1\nrelease:\n  tag: "v{version}-lusoris.{n}"\npackages:\n  - path: pkg\n', 'policy');
    const deps = { exec, env: {}, now: () => new Date('2026-07-01T23:59:59Z') };
    expect((await freezePlan(repo, seed, deps, undefined)).tag).toBe('v3.0.5-lusoris.1');
    git(repo, 'tag', 'v3.0.5-lusoris.1');
    git(repo, 'tag', 'v3.0.5-lusoris.10');
    git(repo, 'push', '-q', 'origin', '--tags');
    // .1 and .10 are taken: the next is .2 (no substring matching of tag names).
    expect((await freezePlan(repo, seed, deps, undefined)).tag).toBe('v3.0.5-lusoris.2');

    const dated = parsePolicy('version: 1\nrelease:\n  tag: "{date}-v{version}"\npackages:\n  - path: pkg\n', 'policy');
    expect((await freezePlan(repo, dated, deps, { source: 'clock' })).tag).toBe('2026.7.1-v3.0.5');
  });

  it('puts prereleases on the next dist-tag, never latest, and checks npm names and tag names', async () => {
    const repo = await tempDir();
    await makeRepo(repo, { version: '2.0.0-rc.1' });
    const plan = await freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined);
    expect(plan.packages[0]?.distTag).toBe('next');
    const custom = parsePolicy('version: 1\npublish:\n  npm:\n    prereleaseTag: beta\npackages:\n  - path: pkg\n', 'policy');
    expect((await freezePlan(repo, custom, { exec, env: {}, now: () => new Date() }, undefined)).packages[0]?.distTag).toBe('beta');
    expect(() => parsePolicy('version: 1\npublish:\n  npm:\n    prereleaseTag: latest\npackages:\n  - path: pkg\n', 'policy')).toThrow(/prereleaseTag/);

    const bad = await tempDir();
    await makeRepo(bad);
    await writeFile(path.join(bad, 'pkg', 'package.json'), JSON.stringify({ name: 'Bad Name', version: '1.0.0' }));
    git(bad, 'commit', '-qam', 'bad name');
    expect(await caught(() => freezePlan(bad, policy, { exec, env: {}, now: () => new Date() }, undefined))).toMatchObject({ code: 'PLAN_PACKAGE_NAME_INVALID' });
    const badTag = parsePolicy('version: 1\nrelease:\n  tag: "v{version} final"\npackages:\n  - path: pkg\n', 'policy');
    expect(await caught(() => freezePlan(repo, badTag, { exec, env: {}, now: () => new Date() }, undefined))).toMatchObject({ code: 'PLAN_TAG_INVALID' });
  });

  it('releases only the packages a filter names (MCP_RELEASE_PACKAGES), and refuses a name the policy does not release', async () => {
    const repo = await tempDir();
    await makeRepo(repo);
    const env = { MCP_RELEASE_PACKAGES: 'demo-pkg' };
    expect((await freezePlan(repo, policy, { exec, env, now: () => new Date() }, undefined)).packages.map((p) => p.name)).toEqual(['demo-pkg']);
    const err = await caught(() => freezePlan(repo, policy, { exec, env: { MCP_RELEASE_PACKAGES: 'demo-pkg,evil;rm -rf /' }, now: () => new Date() }, undefined));
    expect(err).toMatchObject({ code: 'PLAN_PACKAGES_UNKNOWN', hint: expect.stringContaining('demo-pkg') });
  });
});
