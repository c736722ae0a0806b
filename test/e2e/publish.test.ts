import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Lab } from '@mcp-release/lab';
import { readManifest } from '@mcp-release/manifest';
import { CLI, cli, type Ran } from '../helpers/cli.js';
import { git } from '../helpers/git-repo.js';
import { widgetLab, widgetRepo } from '../helpers/widget.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The publish half of the release, end to end: the bundled CLI in its own process (as in a
 * workflow), the real npm CLI and git, against the lab's registry, GitHub and git remote.
 */

const labs: Lab[] = [];
afterEach(async () => {
  for (const lab of labs.splice(0)) await lab.stop();
});

async function labFor(repo: string, commit: string, options: { immutable?: boolean } = {}): Promise<{ lab: Lab; env: NodeJS.ProcessEnv }> {
  const started = await widgetLab(repo, commit, options);
  labs.push(started.lab);
  return started;
}

interface PublicState {
  versions: Record<string, string>;
  distTags: Record<string, string>;
  release?: { draft: boolean; assets: Record<string, string> };
  tag?: { commit: string | null; annotated: boolean; sha: string };
}

/** What consumers can see: the registry's versions and integrities, the release and its asset digests, the tag. */
async function publicState(lab: Lab): Promise<PublicState> {
  const res = await fetch(new URL('acme-widget', lab.registry.url));
  const doc = res.status === 200 ? ((await res.json()) as { versions: Record<string, { dist: { integrity: string } }>; 'dist-tags': Record<string, string> }) : { versions: {}, 'dist-tags': {} };
  const versions = Object.fromEntries(Object.entries(doc.versions).map(([v, m]) => [v, m.dist.integrity]));
  const gh = lab.github.state();
  const rel = gh.releases.find((r) => r.tag_name === 'v1.0.1');
  const assets: Record<string, string> = {};
  for (const a of rel?.assets ?? []) assets[a.name] = a.digest;
  const repoState = gh.repositories.find((r) => r.repo === 'widget');
  const tag = repoState?.tags.find((t) => t.name === 'v1.0.1');
  return {
    versions,
    distTags: doc['dist-tags'],
    ...(rel ? { release: { draft: rel.draft, assets } } : {}),
    ...(tag ? { tag: { commit: tag.commit, annotated: tag.annotated, sha: tag.sha } } : {}),
  };
}

async function release(repo: string, out: string, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<Ran> {
  return cli(['release', '--out', out, '--repo', repo, '--no-native', ...extra], { cwd: repo, env });
}

/** Runs the release and SIGKILLs it as soon as `step` has finished (its manifest record is saved first). */
function releaseKilledAfter(repo: string, out: string, env: NodeJS.ProcessEnv, step: string): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'release', '--out', out, '--repo', repo, '--no-native'], { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killed = false;
    const done = new RegExp(`✔ \\[\\d+/\\d+\\] ${step} `);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!killed && done.test(stderr)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', () => resolve({ killed, stderr }));
  });
}

describe('publish: the whole release against the lab', () => {
  it('reaches npm and a published, verified GitHub release; a re-run changes nothing and exits 0', async () => {
    const { repo, commit } = await widgetRepo();
    const { lab, env } = await labFor(repo, commit, { immutable: true });
    const out = path.join(await tempDir(), 'run');
    const first = await release(repo, out, env);
    expect(first.code, first.stderr).toBe(0);
    const state = await publicState(lab);
    const manifest = await readManifest(path.join(out, 'manifest.json'));
    const tarball = manifest.artifacts.find((a) => a.kind === 'npm-tarball');
    expect(state.versions).toEqual({ '0.0.0-bootstrap.0': expect.any(String), '1.0.1': `sha512-${Buffer.from(tarball?.sha512 ?? '', 'hex').toString('base64')}` });
    expect(state.distTags.latest).toBe('1.0.1');
    expect(state.release?.draft).toBe(false);
    expect(Object.keys(state.release?.assets ?? {})).toEqual(expect.arrayContaining(['acme-widget-1.0.1.tgz', 'SHA256SUMS', 'verify.sh', 'npm-provenance.sigstore.json']));
    expect(state.tag).toMatchObject({ commit, annotated: true });
    expect(manifest.steps['verify-published']?.state).toBe('succeeded');

    // A consumer's own check of the public release, with the registry.
    const verify = await cli(['verify', '--tag', 'v1.0.1', '--repository', 'acme/widget', '--registry', lab.registry.url, '--policy', path.join(repo, 'policies/release-policy.yaml')], { cwd: repo, env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);

    const again = await release(repo, out, env);
    expect(again.code, again.stderr).toBe(0);
    expect(await publicState(lab)).toEqual(state);
    const after = await readManifest(path.join(out, 'manifest.json'));
    expect(after.steps['publish-npm']?.data?.packages).toEqual([expect.objectContaining({ outcome: expect.stringMatching(/already-published|published/) })]);
    expect(after.steps['push-tag']?.data).toMatchObject({ outcome: expect.stringMatching(/pushed/) });
  });

  it('a crash after any publish step, then resume, ends in the same public state as a clean run', async () => {
    const steps = ['release-draft', 'verify-draft', 'publish-npm', 'wait-registry', 'push-tag', 'undraft'];
    let reference: PublicState | undefined;
    for (const step of steps) {
      const { repo, commit } = await widgetRepo();
      const { lab, env } = await labFor(repo, commit);
      const out = path.join(await tempDir(), 'run');
      const crashed = await releaseKilledAfter(repo, out, env, step);
      expect(crashed.killed, `${step}: ${crashed.stderr.slice(-2000)}`).toBe(true);
      const resumed = await cli(['resume', '--manifest', path.join(out, 'manifest.json'), '--repo', repo], { cwd: repo, env });
      expect(resumed.code, `${step}: ${resumed.stderr.slice(-3000)}`).toBe(0);
      const state = await publicState(lab);
      // Signatures differ between runs; the shape must not: one version, a published release, one annotated tag.
      const shape = { versions: Object.keys(state.versions).sort(), latest: state.distTags.latest, draft: state.release?.draft, assets: Object.keys(state.release?.assets ?? {}).sort(), tag: { commit: state.tag?.commit, annotated: state.tag?.annotated } };
      expect(shape.tag.commit).toBe(commit);
      if (reference) expect({ ...shape, tag: { ...shape.tag, commit: 'x' } }).toEqual(reference);
      else reference = { ...shape, tag: { ...shape.tag, commit: 'x' } } as unknown as PublicState;
      const manifest = await readManifest(path.join(out, 'manifest.json'));
      expect(Object.values(manifest.steps).every((s) => s.state === 'succeeded' || s.state === 'skipped'), step).toBe(true);
      await lab.stop();
      labs.splice(labs.indexOf(lab), 1);
    }
  }, 240_000);

  it('a plan for a version that is not committed, or a commit that is not on the default branch, publishes nothing', async () => {
    const { repo, commit } = await widgetRepo();
    const { lab, env } = await labFor(repo, commit);
    await writeFile(path.join(repo, 'pkg', 'package.json'), `${JSON.stringify({ name: 'acme-widget', version: '1.0.10', license: 'MIT', files: ['index.js'] }, null, 2)}\n`);
    const uncommitted = await release(repo, path.join(await tempDir(), 'run'), env);
    expect(uncommitted.code).toBe(1);
    expect(uncommitted.stderr).toContain('PLAN_VERSION_NOT_COMMITTED');

    git(repo, 'checkout', '-q', '-b', 'side');
    git(repo, 'commit', '-qam', 'bump only on a side branch');
    const side = await release(repo, path.join(await tempDir(), 'run'), env);
    expect(side.code).toBe(1);
    expect(side.stderr).toContain('COMMIT_NOT_ON_DEFAULT_BRANCH');
    const state = await publicState(lab);
    expect(Object.keys(state.versions)).toEqual(['0.0.0-bootstrap.0']);
    expect(state.release).toBeUndefined();
    expect(state.tag).toBeUndefined();
  });

  it('a refused exchange stops before anything is public and says why; recover republishes from the release, never a new version', async () => {
    const { repo, commit } = await widgetRepo();
    const { lab, env } = await labFor(repo, commit);
    lab.oidc.claims.environment = 'staging';
    const out = path.join(await tempDir(), 'run');
    const refused = await release(repo, out, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/environment/);
    expect(refused.stderr).toMatch(/release/);
    let state = await publicState(lab);
    expect(Object.keys(state.versions)).toEqual(['0.0.0-bootstrap.0']);
    expect(state.release?.draft ?? true).toBe(true);
    expect(state.tag).toBeUndefined();

    // Fixed binding: resume completes it.
    lab.oidc.claims.environment = 'release';
    const resumed = await cli(['resume', '--manifest', path.join(out, 'manifest.json'), '--repo', repo], { cwd: repo, env });
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    state = await publicState(lab);
    expect(state.release?.draft).toBe(false);

    // recover at the existing tag: the version is already there with the same integrity, so nothing changes.
    const recovered = await cli(['recover', '--package', 'acme-widget', '--tag', 'v1.0.1', '--out', path.join(await tempDir(), 'recover'), '--repo', repo], { cwd: repo, env });
    expect(recovered.code, recovered.stderr.slice(-3000)).toBe(0);
    expect(recovered.stdout).toContain('acme-widget@1.0.1 from v1.0.1: already-published');
    expect(await publicState(lab)).toEqual(state);
    const noTag = await cli(['recover', '--package', 'acme-widget', '--tag', 'v9.9.9', '--out', path.join(await tempDir(), 'recover'), '--repo', repo], { cwd: repo, env });
    expect(noTag.code).toBe(1);
    expect(noTag.stderr).toContain('RECOVER_TAG_MISSING');
  });
});
