import path from 'node:path';
import {
  hashFile,
  resolveInside,
  upsertArtifact,
  writeManifest,
  type Artifact,
  type FileDigests,
  type ArtifactKind,
  type Manifest,
} from '@mcp-release/manifest';
import type { Exec } from './exec.js';
import { formatBytes, type Logger } from './log.js';

/** What a step can reach of the outside world. Tests pass fakes or the lab here. */
export interface Deps {
  exec: Exec;
  env: NodeJS.ProcessEnv;
  /** The clock. Only the plan step may read it (once); every other step reads the plan. */
  now: () => Date;
  /** Stream factory used for hashing (a fault can be injected). */
  openRead?: (file: string) => NodeJS.ReadableStream;
}

export interface Context<O = Record<string, unknown>> {
  /** The repository being released. */
  repoRoot: string;
  /** Holds exactly the release files (what gets checksummed, signed and uploaded). */
  releaseDir: string;
  /** Scratch space: build trees, staging. Never released. */
  workDir: string;
  manifestPath: string;
  manifest: Manifest;
  options: O;
  deps: Deps;
  log: Logger;
  /** The step being run (set by the runner). */
  stepName: string;
  /** Reports progress of long work; lines are throttled to one a second. */
  progress(message: string): void;
  /** Hashes a file in the release folder and records it in the manifest as this step's output. */
  addArtifact(relPath: string, kind: ArtifactKind, platform: string, meta?: Record<string, unknown>): Promise<Artifact>;
  saveManifest(): Promise<void>;
}

export interface Skip {
  skipped: true;
  reason: string;
}

export function skip(reason: string): Skip {
  return { skipped: true, reason };
}

export interface StepOutcome {
  /** Extra facts recorded in the manifest under steps.<name>.data. */
  data?: Record<string, unknown>;
  /** Lines for the summary. */
  notes?: string[];
}

export interface Step<O = Record<string, unknown>> {
  name: string;
  /** One line for help texts and summaries. */
  description: string;
  /** Returns a typed skip with its reason when the step does not apply. */
  skip?(ctx: Context<O>): Skip | undefined | Promise<Skip | undefined>;
  /**
   * A digest of everything the step's output depends on. When the manifest holds a succeeded
   * record with the same fingerprint and every recorded output still has its digests, the step
   * skips itself: that is how a re-run continues after a failure without redoing work.
   */
  fingerprint?(ctx: Context<O>): string | Promise<string>;
  run(ctx: Context<O>): Promise<StepOutcome | void>;
}

export type ContextInit<O> = Pick<Context<O>, 'repoRoot' | 'releaseDir' | 'workDir' | 'manifestPath' | 'manifest' | 'options' | 'deps' | 'log'>;

/** Streams a file through sha256 and sha512, printing progress every 256 MiB on big files. */
export async function hashWithProgress(ctx: Pick<Context<unknown>, 'deps' | 'progress'>, file: string, label: string): Promise<FileDigests> {
  let announced = 0;
  return hashFile(file, {
    ...(ctx.deps.openRead ? { openRead: ctx.deps.openRead } : {}),
    onProgress: (n) => {
      if (n - announced >= 256 * 1024 * 1024) {
        announced = n;
        ctx.progress(`hashing ${label}: ${formatBytes(n)}`);
      }
    },
  });
}

export function createContext<O>(init: ContextInit<O>): Context<O> {
  let lastProgress = 0;
  const ctx: Context<O> = {
    ...init,
    stepName: '',
    progress(message) {
      // A monotonic clock: the wall clock (deps.now) is the plan's alone.
      const t = performance.now();
      if (t - lastProgress >= 1000) {
        lastProgress = t;
        init.log.progress(message);
      }
    },
    async addArtifact(relPath, kind, platform, meta) {
      const real = await resolveInside(ctx.releaseDir, relPath, `release file`);
      const digests = await hashWithProgress(ctx, real, relPath);
      const artifact: Artifact = {
        path: relPath.split(path.sep).join('/'),
        kind,
        platform,
        ...digests,
        producedBy: ctx.stepName,
        ...(meta ? { meta } : {}),
      };
      upsertArtifact(ctx.manifest, artifact);
      return artifact;
    },
    async saveManifest() {
      await writeManifest(ctx.manifestPath, ctx.manifest);
    },
  };
  return ctx;
}
