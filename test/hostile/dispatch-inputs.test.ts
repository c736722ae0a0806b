/**
 * Hostile release dispatch inputs. The `packages` input of release.yml reaches the toolkit only as
 * the environment variable MCP_RELEASE_PACKAGES, read by the plan; shell metacharacters, line
 * breaks and `${{ }}` in it are refused by the workflow's own check (run here with bash) and by
 * the plan, never run, and never echoed as a line a runner would take for a workflow command.
 * That the templates put no expression into a run: script at all is proven by
 * packages/steps/src/init/render.test.ts ("never expand an expression inside a run: script").
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatError, newManifest } from '@mcp-release/manifest';
import { exec, type Exec } from '@mcp-release/pipeline';
import { parsePolicy } from '../../packages/steps/src/policy.js';
import { freezePlan } from '../../packages/steps/src/plan.js';
import { makeRepo } from '../helpers/git-repo.js';
import { caught, REPO_ROOT, tempDir } from '../helpers/tmp.js';

const execFileAsync = promisify(execFile);

/** Values an attacker (or a careless maintainer) can type into the workflow_dispatch form. */
const HOSTILE = [
  'demo-pkg;touch PWNED',
  'demo-pkg && touch PWNED',
  'demo-pkg|touch PWNED',
  '$(touch PWNED)',
  '`touch PWNED`',
  'demo-pkg\ntouch PWNED',
  'demo-pkg\r\n::set-output name=tag::evil',
  '::add-mask::demo-pkg',
  '${{ github.token }}',
  '${{ secrets.NPM_TOKEN }}',
  'demo-pkg,${{ inputs.packages }}',
  "demo-pkg' || touch PWNED || '",
  'demo-pkg" || touch PWNED || "',
  '../../etc/passwd',
  'demo-pkg\u0000',
  '\u202edemo-pkg',
  'demo-pkg,',
  ',demo-pkg',
  'demo-pkg,,demo-pkg',
  'DEMO-PKG',
  'x'.repeat(10_000),
];

const policy = parsePolicy('version: 1\nrelease:\n  tag: "v{version}"\npackages:\n  - path: pkg\n', 'policy');

describe('the package filter (MCP_RELEASE_PACKAGES) in the plan', () => {
  let repo: string;
  // one repository for every case (tempDir folders only live for one test)
  beforeAll(async () => {
    repo = await mkdtemp(path.join(tmpdir(), 'mcp-release-hostile-plan-'));
    await makeRepo(repo);
  });
  afterAll(async () => {
    if (repo) await rm(repo, { recursive: true, force: true });
  });

  it.each(HOSTILE)('refuses %j with PLAN_PACKAGES_UNKNOWN: never passed to a program, never echoed as a runner command', async (value) => {
    const calls: string[][] = [];
    const recording: Exec = (command, args, options) => {
      calls.push([command, ...args]);
      return exec(command, args, options);
    };
    const err = await caught(() => freezePlan(repo, policy, { exec: recording, env: { MCP_RELEASE_PACKAGES: value }, now: () => new Date() }, undefined));
    expect(err).toMatchObject({ code: 'PLAN_PACKAGES_UNKNOWN', hint: expect.stringContaining('demo-pkg') });
    // every command the plan ran is one of its own, and none carries the input
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      expect(call[0]).toBe('git');
      for (const arg of call) expect(arg.includes(value.trim()) && value.trim() !== 'demo-pkg').toBe(false);
    }
    // the input is quoted in the message: no line of what is printed can start a workflow command
    for (const line of formatError(err).split(/\r?\n/)) expect(line.startsWith('::')).toBe(false);
    expect(err.message).not.toMatch(/[\r\n]/);
    expect(await readdir(repo)).not.toContain('PWNED');
  });

  it('accepts the policy package names only (surrounding blanks trimmed), so the filter can only narrow a release', async () => {
    for (const value of ['demo-pkg', '  demo-pkg  ', 'demo-pkg\n']) {
      const plan = await freezePlan(repo, policy, { exec, env: { MCP_RELEASE_PACKAGES: value }, now: () => new Date() }, undefined);
      expect(plan.packages.map((p) => p.name)).toEqual(['demo-pkg']);
    }
  });
});

interface Step {
  name?: string;
  run?: string;
  env?: Record<string, string>;
}

/** The release workflow this repository runs (generated from workflows/release.yml; no drift, see workflows.test.ts). */
async function releaseWorkflowSteps(): Promise<Step[]> {
  const doc = parse(await readFile(path.join(REPO_ROOT, '.github', 'workflows', 'release.yml'), 'utf8')) as { jobs: { plan: { steps: Step[] } } };
  return doc.jobs.plan.steps;
}

/** Runs a run: script as GitHub runs a `shell: bash` step. */
async function runStep(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stderr: string }> {
  const file = path.join(cwd, 'step.sh');
  await writeFile(file, script);
  try {
    const r = await execFileAsync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', file], { cwd, env: { PATH: process.env.PATH, ...env } });
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    return { code: (err as { code?: number }).code ?? -1, stderr: (err as { stderr?: string }).stderr ?? '' };
  }
}

describe("release.yml's own checks of the packages input (bash, as the runner runs them)", () => {
  let check: Step;
  let compare: Step;
  beforeAll(async () => {
    const steps = await releaseWorkflowSteps();
    check = steps.find((s) => s.name === 'Check the packages input') as Step;
    compare = steps.find((s) => s.name === 'Check the plan against the packages input') as Step;
    // the input reaches both scripts through env: only
    expect(check.env).toEqual({ PACKAGES: '${{ inputs.packages }}' });
    expect(compare.env).toEqual({ PACKAGES: '${{ inputs.packages }}' });
  });

  // (an environment variable cannot hold NUL; a long plain name passes this check and is refused by the plan)
  it.each(HOSTILE.filter((v) => !v.includes('\u0000') && !/^x+$/.test(v)))('the input check refuses %j before anything is checked out, and runs none of it', async (value) => {
    const dir = await tempDir('mcp-release-hostile-step-');
    const r = await runStep(check.run as string, { PACKAGES: value }, dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the packages input must be npm package names separated by commas');
    expect(await readdir(dir)).toEqual(['step.sh']);
  });

  it.each(['', 'demo-pkg', '@acme/vmaf-mcp,vmaf-helper', 'a.b_c~d-1'])('the input check lets %j through', async (value) => {
    expect((await runStep(check.run as string, { PACKAGES: value }, await tempDir())).code).toBe(0);
  });

  it('the plan comparison refuses a plan that does not hold exactly the asked packages, and runs none of the input', async () => {
    const temp = await tempDir('mcp-release-hostile-runner-');
    await mkdir(path.join(temp, 'out'));
    const manifest = newManifest({ commit: 'c'.repeat(40), dirty: false, timestamp: '2026-01-01T00:00:00Z', epoch: 1767225600, tag: 'v1.0.0', packages: [{ name: 'demo-pkg', version: '1.0.0', path: 'pkg' }] });
    await writeFile(path.join(temp, 'out', 'manifest.json'), JSON.stringify(manifest));
    const env = { RUNNER_TEMP: temp };
    expect((await runStep(compare.run as string, { ...env, PACKAGES: 'demo-pkg' }, temp)).code).toBe(0);
    for (const value of ['demo-pkg,other', '$(touch PWNED)', 'demo-pkg\ntouch PWNED', '`touch PWNED`']) {
      const r = await runStep(compare.run as string, { ...env, PACKAGES: value }, temp);
      expect(r.code, value).toBe(1);
      expect(r.stderr).toContain('but the packages input asks for');
    }
    expect((await readdir(temp)).sort()).toEqual(['out', 'step.sh']);
  });
});
