import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { newManifest, type Manifest, type Plan } from '@mcp-release/manifest';
import { createContext, exec, runPipeline, silentLogger, type Deps, type RunResult, type Step } from '@mcp-release/pipeline';
import type { ReleaseContext, ReleaseOptions } from '@mcp-release/steps';

export const TEST_PLAN: Plan = {
  commit: 'c'.repeat(40),
  dirty: false,
  timestamp: '2026-03-04T05:06:07Z',
  epoch: 1772600767,
  tag: 'v0.0.1',
  packages: [],
  branch: { name: 'main', remote: 'origin', head: 'c'.repeat(40) },
};

/** A release context over `dir` (release/, work/, manifest.json), as the CLI would make it. */
export async function releaseContext(
  dir: string,
  options: Partial<ReleaseOptions> = {},
  extra: { repoRoot?: string; manifest?: Manifest; deps?: Partial<Deps> } = {},
): Promise<ReleaseContext & { log: ReturnType<typeof silentLogger> }> {
  const releaseDir = path.join(dir, 'release');
  const workDir = path.join(dir, 'work');
  await mkdir(releaseDir, { recursive: true });
  await mkdir(workDir, { recursive: true });
  const log = silentLogger();
  const ctx = createContext<ReleaseOptions>({
    repoRoot: extra.repoRoot ?? dir,
    releaseDir,
    workDir,
    manifestPath: path.join(dir, 'manifest.json'),
    manifest: extra.manifest ?? newManifest(structuredClone(TEST_PLAN)),
    options: { policy: { version: 1, packages: [{ path: '.' }] }, platform: 'linux-x64', ...options },
    deps: { exec, env: process.env, now: () => new Date(), ...extra.deps },
    log,
  });
  return ctx as ReleaseContext & { log: ReturnType<typeof silentLogger> };
}

export async function runSteps(steps: Step<ReleaseOptions>[], ctx: ReleaseContext): Promise<RunResult> {
  return runPipeline(steps, ctx);
}
