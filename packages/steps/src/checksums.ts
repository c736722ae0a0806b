import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { checksummedArtifacts, compareNames, ManifestError, resolveInside, writeFileAtomic, type Artifact } from '@mcp-release/manifest';
import { formatBytes, hashWithProgress, type Step } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import type { ReleaseOptions } from './options.js';
import { digestOf } from './source.js';

export const CHECKSUMS_FILE = 'SHA256SUMS';

/** Every entry in the release folder, relative; symlinks and other non-files are reported. */
async function walk(root: string, rel = ''): Promise<Array<{ rel: string; kind: 'file' | 'symlink' | 'other' }>> {
  const out: Array<{ rel: string; kind: 'file' | 'symlink' | 'other' }> = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(root, child)));
    else out.push({ rel: child, kind: e.isFile() ? 'file' : e.isSymbolicLink() ? 'symlink' : 'other' });
  }
  return out;
}

/** One line per file in the format `sha256sum -c` reads: `<hex>  <name>`. */
export function renderChecksums(entries: Array<{ path: string; sha256: string }>): string {
  return [...entries]
    .sort((a, b) => compareNames(a.path, b.path))
    .map((e) => `${e.sha256}  ${e.path}\n`)
    .join('');
}

/**
 * Writes SHA256SUMS for the release folder. Every file is hashed again by streaming (sha256 and
 * sha512 in one pass) and must match what the step that made it recorded; a file the manifest
 * does not know, a symlink, or a changed file stops the step before anything is written.
 */
export const checksumsStep: Step<ReleaseOptions> = {
  name: 'checksums',
  description: `hash every release file and write ${CHECKSUMS_FILE}`,
  fingerprint(ctx) {
    return digestOf({ step: 'checksums', files: checksummedArtifacts(ctx.manifest).map((a) => [a.path, a.sha256, a.sha512, a.size]) });
  },
  async run(ctx) {
    const expected = new Map<string, Artifact>(checksummedArtifacts(ctx.manifest).map((a) => [a.path, a]));
    const onDisk = await walk(ctx.releaseDir);
    for (const entry of onDisk) {
      if (entry.rel === CHECKSUMS_FILE || entry.rel.endsWith('.sigstore.json')) continue;
      if (entry.rel.startsWith('.') || entry.rel.includes('/.')) continue; // in-flight temporary files of an atomic write
      if (entry.kind === 'symlink') await resolveInside(ctx.releaseDir, entry.rel, 'release file');
      if (entry.kind !== 'file') {
        throw new StepError('RELEASE_NOT_A_FILE', `${entry.rel} in the release folder is a ${entry.kind === 'symlink' ? 'symlink' : 'special file'}`, {
          hint: 'release files are uploaded as plain files; replace it with the file itself',
        });
      }
      if (!expected.has(entry.rel)) {
        throw new StepError('RELEASE_STRAY_FILE', `${entry.rel} is in the release folder but no step produced it`, {
          hint: `remove it from ${ctx.releaseDir}, or let the step that should make it run again`,
        });
      }
    }
    const lines: Array<{ path: string; sha256: string }> = [];
    let total = 0;
    for (const a of expected.values()) {
      const file = await resolveInside(ctx.releaseDir, a.path, 'release file');
      const d = await hashWithProgress(ctx, file, a.path);
      if (d.sha256 !== a.sha256 || d.sha512 !== a.sha512 || d.size !== a.size) {
        throw new ManifestError('ARTIFACT_CHANGED', `${a.path} changed after ${a.producedBy} recorded it (sha256 ${a.sha256.slice(0, 16)}… on record, ${d.sha256.slice(0, 16)}… on disk)`, {
          hint: `something modified the release folder; re-run ${a.producedBy} (delete its entry from the manifest's steps) or restore the file`,
        });
      }
      total += d.size;
      lines.push({ path: a.path, sha256: d.sha256 });
    }
    if (lines.length === 0) {
      throw new StepError('RELEASE_EMPTY', 'there are no release files to checksum', { hint: 'run the build steps first (mcp-release build)' });
    }
    await writeFileAtomic(path.join(ctx.releaseDir, CHECKSUMS_FILE), renderChecksums(lines));
    await ctx.addArtifact(CHECKSUMS_FILE, 'checksums', 'any', { files: lines.length });
    return { notes: [`${lines.length} file(s), ${formatBytes(total)} hashed`] };
  },
};
