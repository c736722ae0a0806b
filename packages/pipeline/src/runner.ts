import { rm } from 'node:fs/promises';
import path from 'node:path';
import { hashFile, isCodedError, removeArtifacts, type Artifact, type StepRecord } from '@mcp-release/manifest';
import { PipelineError, StepSkipped } from './errors.js';
import { formatDuration } from './log.js';
import type { Context, Step } from './step.js';

export interface StepResult {
  name: string;
  state: 'succeeded' | 'skipped' | 'failed';
  reason?: string;
  durationMs: number;
  outputs: string[];
  notes: string[];
  error?: { code: string; message: string; hint?: string };
}

export interface RunResult {
  ok: boolean;
  steps: StepResult[];
  durationMs: number;
  /** The error that stopped the run, when it failed. */
  error?: unknown;
}

export interface RunOptions {
  /** Print "still running" when a step has been silent this long. */
  heartbeatMs?: number;
}

/** Checks that every output recorded for a step is still on disk with the recorded digests. */
async function outputsIntact(ctx: Context<unknown>, record: StepRecord): Promise<string | undefined> {
  for (const out of record.outputs ?? []) {
    const artifact = ctx.manifest.artifacts.find((a) => a.path === out);
    if (!artifact) return `${out} is no longer in the manifest`;
    try {
      const d = await hashFile(path.join(ctx.releaseDir, out));
      if (d.size !== artifact.size || d.sha256 !== artifact.sha256 || d.sha512 !== artifact.sha512) return `${out} changed on disk`;
    } catch {
      return `${out} is missing`;
    }
  }
  return undefined;
}

/**
 * Runs steps in order against one manifest. Each step is logged with its duration; the manifest
 * is saved after every state change, so a crash leaves a record that a re-run can continue from.
 */
export async function runPipeline<O>(steps: ReadonlyArray<Step<O>>, ctx: Context<O>, options: RunOptions = {}): Promise<RunResult> {
  const results: StepResult[] = [];
  const started = performance.now();
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const names = new Set<string>();
  for (const s of steps) {
    if (names.has(s.name)) throw new PipelineError('PIPELINE_DUPLICATE_STEP', `step ${s.name} appears twice in the pipeline`);
    names.add(s.name);
  }

  for (let i = 0; i < steps.length; i += 1) {
    const step = steps[i] as Step<O>;
    const t0 = performance.now();
    ctx.stepName = step.name;
    const label = `[${i + 1}/${steps.length}] ${step.name}`;
    const finish = (r: Omit<StepResult, 'durationMs' | 'name'>): StepResult => {
      const result = { name: step.name, durationMs: performance.now() - t0, ...r };
      results.push(result);
      return result;
    };

    try {
      const typed = await step.skip?.(ctx);
      if (typed) {
        ctx.manifest.steps[step.name] = { state: 'skipped', reason: typed.reason };
        await ctx.saveManifest();
        ctx.log.info(`↷ ${label} skipped: ${typed.reason}`);
        finish({ state: 'skipped', reason: typed.reason, outputs: [], notes: [] });
        continue;
      }

      const fingerprint = step.fingerprint ? await step.fingerprint(ctx) : undefined;
      const previous = ctx.manifest.steps[step.name];
      if (fingerprint && previous?.state === 'succeeded' && previous.fingerprint === fingerprint) {
        const broken = await outputsIntact(ctx as Context<unknown>, previous);
        if (!broken) {
          const reason = `already done (same inputs; ${previous.outputs?.length ?? 0} output(s) verified by digest)`;
          ctx.log.info(`↷ ${label} skipped: ${reason}`);
          finish({ state: 'skipped', reason, outputs: previous.outputs ?? [], notes: [] });
          continue;
        }
        ctx.log.info(`  ${label}: redoing, ${broken}`);
      }

      ctx.log.info(`▶ ${label}: ${step.description}`);
      const before = removeArtifacts(ctx.manifest, (a: Artifact) => a.producedBy === step.name);
      ctx.manifest.steps[step.name] = { state: 'running', ...(fingerprint ? { fingerprint } : {}) };
      await ctx.saveManifest();

      const heartbeat = setInterval(() => {
        ctx.log.progress(`${step.name} still running (${formatDuration(performance.now() - t0)})`);
      }, heartbeatMs);
      heartbeat.unref();
      let outcome;
      try {
        outcome = await step.run(ctx);
      } finally {
        clearInterval(heartbeat);
      }

      const outputs = ctx.manifest.artifacts.filter((a) => a.producedBy === step.name).map((a) => a.path).sort();
      // Files this step wrote last time but not this time would be stray release files.
      for (const old of before) {
        if (!outputs.includes(old.path)) await rm(path.join(ctx.releaseDir, old.path), { force: true });
      }
      ctx.manifest.steps[step.name] = {
        state: 'succeeded',
        ...(fingerprint ? { fingerprint } : {}),
        outputs,
        ...(outcome?.data ? { data: outcome.data } : {}),
      };
      await ctx.saveManifest();
      const r = finish({ state: 'succeeded', outputs, notes: outcome?.notes ?? [] });
      ctx.log.info(`✔ ${label} (${formatDuration(r.durationMs)}${outputs.length ? `, ${outputs.length} file(s)` : ''})`);
    } catch (err) {
      if (err instanceof StepSkipped) {
        ctx.manifest.steps[step.name] = { state: 'skipped', reason: err.message };
        await ctx.saveManifest();
        ctx.log.info(`↷ ${label} skipped: ${err.message}`);
        finish({ state: 'skipped', reason: err.message, outputs: [], notes: [] });
        continue;
      }
      const error = isCodedError(err)
        ? { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) }
        : { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
      ctx.manifest.steps[step.name] = { state: 'failed', error };
      try {
        await ctx.saveManifest();
      } catch {
        // The failure itself is what the user needs to see; a manifest that cannot be saved is secondary.
      }
      const r = finish({ state: 'failed', outputs: [], notes: [], error });
      ctx.log.info(`✖ ${label} failed after ${formatDuration(r.durationMs)}`);
      return { ok: false, steps: results, durationMs: performance.now() - started, error: err };
    }
  }
  return { ok: true, steps: results, durationMs: performance.now() - started };
}
