import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { newManifest, readManifest, type Manifest } from '@mcp-release/manifest';
import { createContext, exec, renderSummary, runPipeline, streamLogger, type Deps, type Logger, type RunResult } from '@mcp-release/pipeline';
import type { ReleaseOptions } from './options.js';
import { pipelines, type PipelineName } from './pipelines.js';
import { freezePlan, planStep } from './plan.js';
import { DEFAULT_POLICY_PATH, loadPolicy } from './policy.js';
import { currentPlatform } from './source.js';
import { StepError } from './errors.js';

export interface ReleaseLayout {
  outDir: string;
  /** Exactly the files that are released. */
  releaseDir: string;
  /** Build trees and staging; never released. */
  workDir: string;
  manifestPath: string;
}

/** `--out DIR` holds `release/`, `manifest.json` and `work/`. */
export function layoutFor(outDir: string): ReleaseLayout {
  const abs = path.resolve(outDir);
  return { outDir: abs, releaseDir: path.join(abs, 'release'), workDir: path.join(abs, 'work'), manifestPath: path.join(abs, 'manifest.json') };
}

export interface ReleaseRunInput {
  pipeline: PipelineName;
  repoRoot: string;
  outDir: string;
  policyPath?: string;
  /** Overrides native.source (absolute, or relative to the repository root). */
  nativeSource?: string;
  /** Merged over native.options. */
  mesonOptions?: Record<string, string>;
  /** Release without native artifacts. */
  noNative?: boolean;
  timestamp?: ReleaseOptions['timestamp'];
  /** release-draft: replace draft assets whose digests differ. */
  replace?: boolean;
  vmafBin?: string;
  platform?: string;
  deps?: Partial<Deps>;
  log?: Logger;
  heartbeatMs?: number;
}

export interface ReleaseRunOutput {
  run: RunResult;
  manifest: Manifest;
  layout: ReleaseLayout;
  summary: string;
}

/** Opens (or plans) the release in `outDir` and runs one pipeline over it. */
export async function runRelease(input: ReleaseRunInput): Promise<ReleaseRunOutput> {
  const deps: Deps = { exec, env: process.env, now: () => new Date(), ...input.deps };
  const log = input.log ?? streamLogger();
  const layout = layoutFor(input.outDir);
  const policyPath = path.resolve(input.repoRoot, input.policyPath ?? DEFAULT_POLICY_PATH);
  const policy = await loadPolicy(policyPath);

  let native = input.noNative ? undefined : policy.native;
  if (!input.noNative && (input.nativeSource || input.mesonOptions)) {
    const base = native ?? { source: input.nativeSource ?? '' };
    if (!base.source) {
      throw new StepError('NATIVE_SOURCE_MISSING', 'meson options were given but no native source is configured', {
        hint: 'pass --native-source PATH or set native.source in the release policy',
      });
    }
    native = {
      ...base,
      ...(input.nativeSource ? { source: path.resolve(input.repoRoot, input.nativeSource) } : {}),
      options: { ...(base.options ?? {}), ...(input.mesonOptions ?? {}) },
    };
    // A different tree usually names its targets differently; let introspection find them.
    if (input.nativeSource && policy.native && path.resolve(input.repoRoot, policy.native.source) !== native.source) {
      delete native.library;
      delete native.cli;
    }
  }
  const options: ReleaseOptions = {
    policy,
    ...(native ? { native } : {}),
    platform: input.platform ?? currentPlatform(),
    ...(input.pipeline === 'rehearse' ? { rehearsal: true } : {}),
    ...(input.vmafBin ? { vmafBin: input.vmafBin } : {}),
    ...(input.timestamp ? { timestamp: input.timestamp } : {}),
    ...(input.replace ? { replace: true } : {}),
  };

  let manifest: Manifest;
  if (await stat(layout.manifestPath).catch(() => undefined)) {
    manifest = await readManifest(layout.manifestPath);
  } else if (!(pipelines[input.pipeline] as ReadonlyArray<unknown>).includes(planStep)) {
    throw new StepError('MANIFEST_MISSING', `there is no manifest in ${layout.outDir}; ${input.pipeline} works on a planned release`, {
      hint: `plan the release first: mcp-release plan --out ${input.outDir} (or run mcp-release build)`,
    });
  } else {
    manifest = newManifest(await freezePlan(input.repoRoot, policy, deps, options.timestamp, log));
  }
  await mkdir(layout.releaseDir, { recursive: true });
  await mkdir(layout.workDir, { recursive: true });

  const ctx = createContext<ReleaseOptions>({
    repoRoot: input.repoRoot,
    releaseDir: layout.releaseDir,
    workDir: layout.workDir,
    manifestPath: layout.manifestPath,
    manifest,
    options,
    deps,
    log,
  });
  const run = await runPipeline(pipelines[input.pipeline], ctx, input.heartbeatMs ? { heartbeatMs: input.heartbeatMs } : {});
  return { run, manifest: ctx.manifest, layout, summary: renderSummary(`mcp-release ${input.pipeline}`, run, ctx.manifest) };
}
