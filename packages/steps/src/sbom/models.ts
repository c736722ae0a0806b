import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { resolveInside, type Artifact } from '@mcp-release/manifest';
import { StepError } from '../errors.js';

export interface SbomModelFile {
  /** Path inside the archive (`model/vmaf_v0.6.1.json`). */
  path: string;
  size: number;
  sha256: string;
  /** SPDX 2.3 requires SHA1 for files; computed while streaming the archive. */
  sha1: string;
}

export interface SbomModelsArchive {
  artifact: Artifact;
  files: SbomModelFile[];
}

function listedFiles(artifact: Artifact): Array<{ path: string; size: number; sha256: string }> {
  const files = artifact.meta?.files;
  const ok =
    Array.isArray(files) &&
    files.every((f: unknown) => {
      const o = f as { path?: unknown; size?: unknown; sha256?: unknown } | null;
      return !!o && typeof o.path === 'string' && typeof o.size === 'number' && typeof o.sha256 === 'string' && /^[0-9a-f]{64}$/.test(o.sha256);
    });
  if (!ok) {
    throw new StepError('SBOM_MODELS_UNLISTED', `the manifest does not list the files inside ${artifact.path} (meta.files with path, size and sha256)`, {
      hint: `re-run ${artifact.producedBy}: it records every model file of the archive in the manifest`,
    });
  }
  return files as Array<{ path: string; size: number; sha256: string }>;
}

/**
 * The model files inside a models archive, as the manifest lists them. The archive is streamed once
 * (never read whole) to add each file's SHA1 and to check that it holds exactly the listed files
 * with the listed digests.
 */
export async function collectModelsArchive(artifact: Artifact, releaseDir: string): Promise<SbomModelsArchive> {
  const listed = listedFiles(artifact);
  const file = await resolveInside(releaseDir, artifact.path, 'release file');
  const found = new Map<string, { size: number; sha256: string; sha1: string }>();
  const parser = new Parser({
    strict: true,
    onReadEntry(entry: ReadEntry) {
      if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
        entry.resume();
        return;
      }
      const sha1 = createHash('sha1');
      const sha256 = createHash('sha256');
      let size = 0;
      entry.on('data', (chunk: Buffer) => {
        sha1.update(chunk);
        sha256.update(chunk);
        size += chunk.length;
      });
      entry.on('end', () => found.set(entry.path.replace(/^\.\//, ''), { size, sha256: sha256.digest('hex'), sha1: sha1.digest('hex') }));
    },
  });
  try {
    await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), parser);
  } catch (err) {
    throw new StepError('SBOM_MODELS_UNREADABLE', `${artifact.path} is not a readable tar.gz archive: ${(err as Error).message}`, {
      cause: err,
      hint: `re-run ${artifact.producedBy} to write ${artifact.path} again`,
    });
  }
  const problems: string[] = [];
  const files: SbomModelFile[] = [];
  for (const l of listed) {
    const f = found.get(l.path);
    if (!f) problems.push(`${l.path} is listed in the manifest but not in the archive`);
    else if (f.sha256 !== l.sha256 || f.size !== l.size) problems.push(`${l.path} has sha256 ${f.sha256} (${f.size} bytes) in the archive, ${l.sha256} (${l.size} bytes) in the manifest`);
    else files.push({ path: l.path, size: l.size, sha256: l.sha256, sha1: f.sha1 });
  }
  for (const p of found.keys()) if (!listed.some((l) => l.path === p)) problems.push(`${p} is in the archive but not listed in the manifest`);
  if (problems.length) {
    throw new StepError('SBOM_MODELS_MISMATCH', `${artifact.path} does not hold the files the manifest lists: ${problems[0]}`, {
      details: problems.slice(0, 20),
      hint: `the archive changed after ${artifact.producedBy} recorded it; re-run ${artifact.producedBy}`,
    });
  }
  return { artifact, files: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}
