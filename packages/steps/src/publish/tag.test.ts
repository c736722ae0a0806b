import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exec } from '@mcp-release/pipeline';
import { newManifest } from '@mcp-release/manifest';
import { releaseContext, runSteps } from '../../../../test/helpers/context.js';
import { git, makeRepo } from '../../../../test/helpers/git-repo.js';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { freezePlan } from '../plan.js';
import { parsePolicy } from '../policy.js';
import { pushReleaseTag, pushTagStep } from './tag.js';

const policy = parsePolicy('version: 1\nrelease:\n  tag: "v{version}"\npackages:\n  - path: pkg\n', 'policy');
const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1' };

async function published(): Promise<{ repo: string; remote: string; commit: string }> {
  const repo = await tempDir();
  const commit = await makeRepo(repo);
  const remote = await tempDir();
  git(remote, 'init', '-q', '--bare');
  git(repo, 'remote', 'add', 'origin', remote);
  git(repo, 'push', '-q', 'origin', 'main');
  return { repo, remote, commit };
}

async function contextFor(repo: string) {
  const plan = await freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined);
  return releaseContext(await tempDir(), { policy }, { repoRoot: repo, manifest: newManifest(plan), deps: { env } });
}

describe('push-tag', () => {
  it('pushes an annotated tag on the planned commit, identical on every run, and a re-run changes nothing', async () => {
    const { repo, remote, commit } = await published();
    const ctx = await contextFor(repo);
    const first = await pushReleaseTag(ctx);
    expect(first).toMatchObject({ tag: 'v1.2.3', commit, outcome: 'pushed' });
    expect(git(remote, 'cat-file', '-t', 'refs/tags/v1.2.3')).toBe('tag');
    expect(git(remote, 'rev-parse', 'v1.2.3^{commit}')).toBe(commit);
    expect(git(remote, 'cat-file', '-p', 'refs/tags/v1.2.3')).toContain('demo-pkg@1.2.3');
    const object = git(remote, 'rev-parse', 'refs/tags/v1.2.3');

    const again = await runSteps([pushTagStep], ctx);
    expect(again.ok).toBe(true);
    expect(ctx.manifest.steps['push-tag']?.data).toMatchObject({ outcome: 'already-pushed', object });

    // The tag object is made from the plan alone: a second clone makes the same bytes.
    const other = await published();
    git(other.repo, 'reset', '-q', '--hard', commit);
    expect((await pushReleaseTag(await contextFor(other.repo))).object).toBe(object);
  });

  it('never moves a tag that names another commit', async () => {
    const { repo, remote } = await published();
    await writeFile(path.join(repo, 'stray.txt'), 'x');
    git(repo, 'add', 'stray.txt');
    git(repo, 'commit', '-qm', 'stray');
    git(repo, 'tag', 'v1.2.3');
    git(repo, 'push', '-q', 'origin', 'refs/tags/v1.2.3');
    const stray = git(remote, 'rev-parse', 'v1.2.3');
    git(repo, 'tag', '-d', 'v1.2.3');
    git(repo, 'reset', '-q', '--hard', 'HEAD~1');
    const ctx = await contextFor(repo);
    expect(await caught(() => pushReleaseTag(ctx))).toMatchObject({ code: 'TAG_EXISTS_ELSEWHERE', hint: expect.stringContaining('never moved') });
    expect(git(remote, 'rev-parse', 'v1.2.3')).toBe(stray);
  });

  it('refuses a plan made without a remote, and a commit no longer on the default branch', async () => {
    const repo = await tempDir();
    await makeRepo(repo);
    const local = await contextFor(repo);
    expect(await caught(() => pushReleaseTag(local))).toMatchObject({ code: 'PLAN_NOT_PUBLISHABLE' });

    const { repo: r2, remote } = await published();
    const ctx = await contextFor(r2);
    // The default branch is rewritten after the plan (the planned commit dropped from it).
    const other = await tempDir();
    await makeRepo(other, { version: '9.9.9' });
    git(other, 'push', '-q', '--force', remote, 'main');
    expect(await caught(() => pushReleaseTag(ctx))).toMatchObject({ code: 'COMMIT_NOT_ON_DEFAULT_BRANCH' });
    expect(() => git(remote, 'rev-parse', '--verify', '-q', 'refs/tags/v1.2.3')).toThrow();
  });

  it('leaves the checkout without a local tag (the tag object is pushed by its id)', async () => {
    const { repo, remote } = await published();
    await pushReleaseTag(await contextFor(repo));
    expect(git(repo, 'tag', '-l')).toBe('');
    expect(git(remote, 'tag', '-l')).toBe('v1.2.3');
  });

  it('diagnoses a remote that keeps failing, after bounded retries, and says resume finishes it', async () => {
    const { repo } = await published();
    const ctx = await contextFor(repo);
    git(repo, 'remote', 'set-url', '--push', 'origin', path.join(repo, 'no-such-remote'));
    const waits: number[] = [];
    const err = await caught(() => pushReleaseTag(ctx, async (ms) => void waits.push(ms)));
    expect(err).toMatchObject({ code: 'TAG_PUSH_FAILED', hint: expect.stringContaining('mcp-release resume') });
    expect(waits).toEqual([500, 1000, 2000]);
  });
});
