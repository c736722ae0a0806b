import { cp, mkdir, readFile, readdir, stat, symlink, writeFile, appendFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ACTION_STEPS } from '../../actions/_shared/src/main.js';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, run } from '../helpers/cli.js';
import { REPO_ROOT, tempDir } from '../helpers/tmp.js';

/** Reads a GITHUB_OUTPUT file (`name<<DELIMITER` blocks, as @actions/core writes them). */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i] as string);
    if (!m) continue;
    const value: string[] = [];
    for (i += 1; i < lines.length && lines[i] !== m[2]; i += 1) value.push(lines[i] as string);
    out[m[1] as string] = value.join('\n');
  }
  return out;
}

/** Runs a bundled action the way the runner does: inputs as INPUT_*, output and summary files. */
async function runAction(action: string, inputs: Record<string, string>): Promise<{ code: number | null; stdout: string; outputs: Record<string, string>; summary: string }> {
  const dir = await tempDir();
  const outputFile = path.join(dir, 'output');
  const summaryFile = path.join(dir, 'summary');
  await writeFile(outputFile, '');
  await writeFile(summaryFile, '');
  const env: NodeJS.ProcessEnv = { ...process.env, GITHUB_OUTPUT: outputFile, GITHUB_STEP_SUMMARY: summaryFile, GITHUB_WORKSPACE: REPO_ROOT, GITHUB_ACTIONS: 'true' };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  const r = await run(process.execPath, [path.join(REPO_ROOT, action)], { env });
  return { code: r.code, stdout: r.stdout, outputs: parseOutputs(await readFile(outputFile, 'utf8')), summary: await readFile(summaryFile, 'utf8') };
}

interface ActionYml {
  inputs: Record<string, { required?: boolean; default?: string }>;
  outputs: Record<string, unknown>;
  runs: { using: string; main: string };
}

describe('the GitHub actions', () => {
  it('every step has an action folder; each runs on node24 with a bundled main and declares what the edge reads', async () => {
    const edge = await readFile(path.join(REPO_ROOT, 'actions/_shared/src/edge.ts'), 'utf8');
    const read = [...edge.matchAll(/(?:getInput|optional|lines)\('([a-z-]+)'/g)].map((m) => m[1] as string);
    const folders = (await readdir(path.join(REPO_ROOT, 'actions'))).filter((f) => !f.startsWith('_') && f !== 'umbrella' && f !== 'res');
    expect(folders.filter((f) => f !== 'res').sort()).toEqual([...ACTION_STEPS].sort());
    for (const [dir, file] of [...folders.map((f) => [`actions/${f}`, `actions/${f}/action.yml`]), ['.', 'action.yml']] as const) {
      const yml = parseYaml(await readFile(path.join(REPO_ROOT, file), 'utf8')) as ActionYml;
      expect(yml.runs.using, file).toBe('node24');
      expect((await stat(path.join(REPO_ROOT, dir, yml.runs.main))).isFile(), file).toBe(true);
      expect(Object.keys(yml.outputs).sort(), file).toEqual(['artifacts', 'manifest', 'release-dir', 'result', 'tag']);
      for (const input of Object.keys(yml.inputs)) expect(read, `${file} declares ${input} but nothing reads it`).toContain(input);
      expect(await readFile(path.join(REPO_ROOT, dir, dir === '.' ? 'actions/umbrella/README.md' : 'README.md'), 'utf8')).toMatch(/## Permissions/);
    }
    const umbrella = parseYaml(await readFile(path.join(REPO_ROOT, 'action.yml'), 'utf8')) as ActionYml;
    expect(Object.keys(umbrella.inputs).sort()).toEqual([...new Set(read)].sort());
  });

  it('check-dist: the committed bundles are what the sources build', async () => {
    const r = await run(process.execPath, ['scripts/build.mjs', '--check']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('check-dist fails on a stale bundle', async () => {
    const copy = await tempDir();
    for (const d of ['actions', 'packages', 'policies', 'scripts']) {
      await cp(path.join(REPO_ROOT, d), path.join(copy, d), { recursive: true, filter: (src) => !src.includes(`${path.sep}packages${path.sep}cli${path.sep}dist`) });
    }
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    await appendFile(path.join(copy, 'actions/checksums/dist/index.mjs'), '\n// edited by hand\n');
    const r = await run(process.execPath, [path.join(copy, 'scripts/build.mjs'), '--check', '--root', copy]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/actions\/checksums\/dist\/index\.mjs differs from a fresh build/);
    expect(r.stderr).toMatch(/npm run bundle/);
  });

  it('the checksums action runs as GitHub runs it: outputs, job summary, SHA256SUMS', async () => {
    const out = await tempDir();
    expect((await cli(['build', '--out', out, '--no-native'])).code).toBe(0);
    const r = await runAction('actions/checksums/dist/index.mjs', { 'out-dir': out });
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.result).toBe('succeeded');
    expect(r.outputs['release-dir']).toBe(path.join(out, 'release'));
    const artifacts = JSON.parse(r.outputs.artifacts as string) as Array<{ path: string; kind: string }>;
    expect(artifacts.map((a) => a.kind).sort()).toEqual(['checksums', 'npm-tarball', 'npm-tarball']);
    expect(r.summary).toMatch(/^## mcp-release checksums/m);
    expect(r.summary).toMatch(/\| checksums \| succeeded \|/);
    expect(r.summary).toMatch(/\| SHA256SUMS \| checksums \| any \|/);
    await expect(readFile(path.join(out, 'release', 'SHA256SUMS'), 'utf8')).resolves.toMatch(/^[0-9a-f]{64} {2}vmaf-mcp-0\.1\.0\.tgz$/m);
  });

  it('the umbrella action dispatches on `step`, and refuses an unknown one with the fix', async () => {
    const out = await tempDir();
    const plan = await runAction('actions/umbrella/dist/index.mjs', { step: 'plan', 'out-dir': out, timestamp: 'commit' });
    expect(plan.code, plan.stdout).toBe(0);
    expect(plan.outputs.tag).toBe('v0.1.0');

    const bad = await runAction('actions/umbrella/dist/index.mjs', { step: 'publish-everything', 'out-dir': out });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/::error::error ACTION_INPUT: step "publish-everything" is not a step/);
    expect(bad.stdout).toMatch(/fix: set with: step: to one of plan, build-npm, build-native, smoke-mcp, mcp-consistency, gate-golden, sbom, verify-script, checksums, sign, provenance, attest-gate, verify, release-github, publish-npm, push-tag, undraft/);
    expect(bad.summary).toMatch(/Result: \*\*failed\*\*/);
  });

  it('the sbom action works from its bundle: SPDX and CycloneDX written and validated with the shipped schemas', async () => {
    const out = await tempDir();
    expect((await cli(['build', '--out', out, '--no-native'])).code).toBe(0);
    const r = await runAction('actions/sbom/dist/index.mjs', { 'out-dir': out });
    expect(r.code, r.stdout).toBe(0);
    const kinds = (JSON.parse(r.outputs.artifacts as string) as Array<{ kind: string }>).map((a) => a.kind);
    expect(kinds).toEqual(expect.arrayContaining(['sbom-spdx', 'sbom-cyclonedx']));
    const cdx = JSON.parse(await readFile(path.join(out, 'release', 'sbom.cdx.json'), 'utf8')) as { specVersion: string };
    expect(cdx.specVersion).toBe('1.6');
  });

  it('the sign action in a job without id-token: write says which permission to add', async () => {
    const out = await tempDir();
    expect((await cli(['build', '--out', out, '--no-native'])).code).toBe(0);
    const env: Record<string, string> = { 'out-dir': out };
    const r = await runAction('actions/sign/dist/index.mjs', env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error::error OIDC_TOKEN_UNAVAILABLE: this job has no OIDC token to sign with/);
    expect(r.stdout).toMatch(/fix: give the signing job `permissions: id-token: write`/);
  });

  it('a step action without a plan fails with the fix, not a stack trace', async () => {
    const empty = path.join(await tempDir(), 'nothing-here');
    await mkdir(empty);
    const r = await runAction('actions/build-npm/dist/index.mjs', { 'out-dir': empty });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error::error MANIFEST_MISSING/);
    expect(r.stdout).not.toMatch(/\n\s+at /);
  });
});
