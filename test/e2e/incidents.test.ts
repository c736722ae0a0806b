import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootstrapPackage, type Lab } from '@mcp-release/lab';
import { readManifest } from '@mcp-release/manifest';
import { exec, silentLogger } from '@mcp-release/pipeline';
import { lintWorkflowText, releasePipeline, releaseSteps, runRelease } from '@mcp-release/steps';
import { cli, run } from '../helpers/cli.js';
import { git } from '../helpers/git-repo.js';
import { widgetLab, widgetRepo } from '../helpers/widget.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The incidents of the modelcontextprotocol/servers release pipeline (its issue #4463), replayed
 * against the lab, each named after the incident, each showing it is prevented or diagnosed.
 * Dead publish paths and zombie scheduled runs are workflow mistakes: the workflow linter finds
 * them (rules MR006, MR007 and MR008; its own tests hold one case per rule).
 */

const labs: Lab[] = [];
afterEach(async () => {
  for (const lab of labs.splice(0)) await lab.stop();
});

async function labFor(repo: string, commit: string): Promise<{ lab: Lab; env: NodeJS.ProcessEnv }> {
  const started = await widgetLab(repo, commit);
  labs.push(started.lab);
  return started;
}

/** Nothing a consumer sees has changed: no version but the bootstrap, no release (or only a draft), no tag. */
async function expectNothingPublic(lab: Lab): Promise<void> {
  const doc = (await (await fetch(new URL('acme-widget', lab.registry.url))).json()) as { versions: Record<string, unknown> };
  expect(Object.keys(doc.versions)).toEqual(['0.0.0-bootstrap.0']);
  const state = lab.github.state();
  expect(state.releases.every((r) => r.draft)).toBe(true);
  expect(state.repositories.flatMap((r) => r.tags)).toEqual([]);
}

describe('#4463 incidents, replayed in the lab', () => {
  it('#4463 expired token: a dead credential answered with a disguised E404 on the publish PUT is named as such, and nothing is tagged or undrafted', async () => {
    const { repo, commit } = await widgetRepo();
    const { lab, env } = await labFor(repo, commit);
    lab.registry.chaos.add({ route: '^/acme-widget$', method: 'PUT', count: 1, fault: { kind: 'status', status: 404, body: '{"error":"Not found"}' } });
    const r = await cli(['release', '--out', path.join(await tempDir(), 'run'), '--repo', repo, '--no-native'], { cwd: repo, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('NPM_PUBLISH_CREDENTIAL_DEAD');
    expect(r.stderr).toMatch(/404 Not Found/);
    expect(r.stderr).toMatch(/dead credential/);
    await expectNothingPublic(lab);
  });

  it('#4463 tag before tests: the tag is pushed only after every gate, the build, signing, the verified draft and npm; a failing build leaves no tag, draft or version', async () => {
    const order = releasePipeline.map((s) => s.name);
    const tagAt = order.indexOf(releaseSteps.pushTag.name);
    for (const before of ['build-npm', 'build-native', 'smoke-mcp', 'gate-golden', 'sign', 'provenance', 'verify', 'release-draft', 'verify-draft', 'publish-npm', 'wait-registry']) {
      expect(order.indexOf(before), before).toBeGreaterThanOrEqual(0);
      expect(order.indexOf(before), before).toBeLessThan(tagAt);
    }
    expect(order.at(-2)).toBe('undraft');

    const { repo, commit } = await widgetRepo({ prepack: 'node -e "process.exit(3)"' });
    const { lab, env } = await labFor(repo, commit);
    const r = await cli(['release', '--out', path.join(await tempDir(), 'run'), '--repo', repo, '--no-native'], { cwd: repo, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('build-npm');
    await expectNothingPublic(lab);
    expect(lab.github.state().releases).toEqual([]);
  });

  it('#4463 phantom versions: a version bump that lives only on a side commit is refused before anything is built', async () => {
    const { repo, commit } = await widgetRepo();
    const { lab, env } = await labFor(repo, commit);
    git(repo, 'checkout', '-q', '-b', 'release-bump');
    await writeFile(path.join(repo, 'pkg', 'package.json'), `${JSON.stringify({ name: 'acme-widget', version: '1.0.2', license: 'MIT', files: ['index.js'] }, null, 2)}\n`);
    git(repo, 'commit', '-qam', 'bump on a tag-only commit');
    const r = await cli(['release', '--out', path.join(await tempDir(), 'run'), '--repo', repo, '--no-native'], { cwd: repo, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('COMMIT_NOT_ON_DEFAULT_BRANCH');
    await expectNothingPublic(lab);
  });

  it('#4463 date drift: a release planned at 23:59:59 UTC and published after midnight carries the planned date everywhere, and no step reads the clock again', async () => {
    const { repo, commit } = await widgetRepo({ tag: 'v{version}-{date}' });
    const { lab, env } = await labFor(repo, commit);
    let reads = 0;
    const now = (): Date => {
      reads += 1;
      if (reads > 1) throw new Error('a step read the clock after the plan');
      return new Date('2026-07-01T23:59:59.500Z');
    };
    const out = path.join(await tempDir(), 'run');
    const planned = await runRelease({ pipeline: 'plan', repoRoot: repo, outDir: out, noNative: true, timestamp: { source: 'clock' }, deps: { exec, env, now }, log: silentLogger() });
    expect(planned.run.ok).toBe(true);
    expect(planned.manifest.plan).toMatchObject({ tag: 'v1.0.1-2026.7.1', timestamp: '2026-07-01T23:59:59Z', timestampSource: 'clock' });
    // The approval wait crosses midnight: the clock now says 2 July, and reading it would throw.
    const published = await runRelease({ pipeline: 'release', repoRoot: repo, outDir: out, noNative: true, deps: { exec, env, now }, log: silentLogger() });
    expect(published.run.ok, String((published.run.error as Error | undefined)?.stack ?? published.run.error)).toBe(true);
    expect(reads).toBe(1);
    const manifest = await readManifest(path.join(out, 'manifest.json'));
    expect(manifest.plan.tag).toBe('v1.0.1-2026.7.1');
    const tags = lab.github.state().repositories.flatMap((r) => r.tags);
    expect(tags.map((t) => t.name)).toEqual(['v1.0.1-2026.7.1']);
    const remote = lab.github.state().repositories[0]?.path as string;
    const tagger = git(remote, 'cat-file', '-p', 'refs/tags/v1.0.1-2026.7.1');
    expect(tagger).toMatch(new RegExp(`tagger .* ${Date.parse('2026-07-01T23:59:59Z') / 1000} \\+0000`));
    expect(lab.github.state().releases.map((r) => [r.tag_name, r.draft])).toEqual([['v1.0.1-2026.7.1', false]]);
  });

  it('#4463 unsafe re-runs: 1.0.1 is not mistaken for 1.0.10 on the registry, and a re-run publishes nothing twice', async () => {
    const { repo, commit } = await widgetRepo({ version: '1.0.1' });
    const { lab, env } = await labFor(repo, commit);
    // 1.0.10 is already on the registry (a substring match of "1.0.1" would wrongly skip the publish).
    const ahead = await tempDir();
    await writeFile(path.join(ahead, 'package.json'), JSON.stringify({ name: 'acme-widget', version: '1.0.10', license: 'MIT' }));
    await writeFile(path.join(ahead, '.npmrc'), `//${new URL(lab.registry.url).host}/:_authToken=${lab.registry.adminToken}\n`);
    const pub = await run('npm', ['publish', '--tag', 'ahead', '--registry', lab.registry.url, '--userconfig', path.join(ahead, '.npmrc')], { cwd: ahead, env: { ...process.env, NPM_CONFIG_PROVENANCE: 'false' } });
    expect(pub.code, pub.stderr).toBe(0);
    expect(await bootstrapPackage(lab.registry, 'acme-widget')).toBe('exists');

    const out = path.join(await tempDir(), 'run');
    const first = await cli(['release', '--out', out, '--repo', repo, '--no-native'], { cwd: repo, env });
    expect(first.code, first.stderr.slice(-2000)).toBe(0);
    const m1 = await readManifest(path.join(out, 'manifest.json'));
    expect(m1.steps['publish-npm']?.data?.packages).toEqual([expect.objectContaining({ version: '1.0.1', outcome: 'published' })]);

    const again = await cli(['release', '--out', out, '--repo', repo, '--no-native', '--json'], { cwd: repo, env });
    expect(again.code).toBe(0);
    const steps = (JSON.parse(again.stdout) as { steps: Array<{ name: string; state: string; reason?: string; notes: string[] }> }).steps;
    const npmAgain = steps.find((s) => s.name === 'publish-npm');
    // Either skipped as already done, or run again and found the exact version with the same integrity.
    expect(npmAgain?.state === 'skipped' ? npmAgain.reason : npmAgain?.notes.join(' ')).toMatch(/already/);
    const doc = (await (await fetch(new URL('acme-widget', lab.registry.url))).json()) as { versions: Record<string, unknown> };
    expect(Object.keys(doc.versions).sort()).toEqual(['0.0.0-bootstrap.0', '1.0.1', '1.0.10']);
  });

  it('#4463 dead publish paths: a publish job triggered by release events (which a GITHUB_TOKEN-made release never fires) and a second publish path are both reported', () => {
    const dead = `on:\n  release:\n    types: [published]\npermissions:\n  contents: read\njobs:\n  publish:\n    runs-on: ubuntu-24.04\n    environment: release\n    permissions:\n      id-token: write\n    steps:\n      - run: npm publish\n`;
    const ids = lintWorkflowText(dead, '.github/workflows/publish.yml', { releaseWorkflows: ['release.yml'] }).findings.map((f) => f.ruleId);
    expect(ids).toContain('MR007');
    expect(ids).toContain('MR006');
  });

  it('#4463 zombie runs: a scheduled trigger on a workflow that publishes is reported', () => {
    const zombie = `on:\n  schedule:\n    - cron: "0 3 * * *"\n  workflow_dispatch:\npermissions:\n  contents: read\njobs:\n  publish:\n    runs-on: ubuntu-24.04\n    environment: release\n    permissions:\n      id-token: write\n    steps:\n      - run: npm publish\n`;
    const findings = lintWorkflowText(zombie, '.github/workflows/release.yml', { releaseWorkflows: ['release.yml'] }).findings;
    expect(findings.map((f) => f.ruleId)).toEqual(['MR008']);
    expect(findings[0]?.line).toBe(2);
  });
});
