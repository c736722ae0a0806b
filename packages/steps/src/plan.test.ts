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
      packages: [{ name: 'demo-pkg', version: '1.2.3', path: 'pkg' }],
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
    expect(changed.error).toMatchObject({ code: 'PLAN_VERSION_CHANGED' });

    git(repo, 'commit', '-qam', 'bump');
    const moved = await runSteps([planStep], ctx);
    expect(moved.error).toMatchObject({ code: 'PLAN_COMMIT_MISMATCH', hint: expect.stringContaining(plan.commit) });
  });
});
