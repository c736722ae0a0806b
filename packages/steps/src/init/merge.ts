/**
 * Joining the parts of a release built in several jobs (`mcp-release merge-manifests`): the
 * native build of every platform of the matrix and the npm packages each start from the same
 * plan and add their own files. The merged manifest holds them all; two parts that disagree
 * about one file, one plan or one platform's build stop the release, because a file released
 * under one name must have one set of bytes.
 */
import { copyFile, lstat, mkdir, mkdtemp, readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import {
  canonicalJson,
  compareNames,
  hashFile,
  MANIFEST_SCHEMA_VERSION,
  parseManifest,
  readManifest,
  writeManifest,
  type Artifact,
  type Manifest,
  type StepRecord,
} from '@mcp-release/manifest';
import { StepError } from '../errors.js';

const same = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

/** The top-level fields in which two values differ, for messages. */
function differingFields(a: object, b: object): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => !same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function mergeStep(name: string, records: Array<{ record: StepRecord; part: string }>): StepRecord {
  const first = records[0] as { record: StepRecord; part: string };
  if (records.every((r) => same(r.record, first.record))) return structuredClone(first.record);
  const notDone = records.find((r) => r.record.state !== 'succeeded');
  if (notDone) {
    throw new StepError('MERGE_STEP_CONFLICT', `step ${name} is ${notDone.record.state} in ${notDone.part} but recorded differently in another part`, {
      details: records.map((r) => `${r.part}: ${r.record.state}`),
      hint: 'every part must come from a finished job of the same run; re-run the failed job, then merge again',
    });
  }
  const withData = records.filter((r) => r.record.data !== undefined);
  if (withData.length && !withData.every((r) => same(r.record.data, (withData[0] as { record: StepRecord }).record.data))) {
    throw new StepError('MERGE_STEP_CONFLICT', `step ${name} recorded different results in ${withData.map((r) => r.part).join(' and ')}`, {
      hint: 'a step whose result depends on the job ran in several parts; run it once, after the merge',
    });
  }
  // The same step ran in several jobs (one per platform): it succeeded, with every part's outputs.
  // Its fingerprints described one job each, so none is kept.
  const outputs = [...new Set(records.flatMap((r) => r.record.outputs ?? []))].sort(compareNames);
  return { state: 'succeeded', outputs, ...(withData[0]?.record.data !== undefined ? { data: structuredClone(withData[0].record.data) } : {}) };
}

/**
 * Merges the manifests of the parts of one release. Every part must hold the same plan; files are
 * joined by path (one path in two parts must be the same record: same bytes, kind and platform);
 * native builds are joined by platform; a step recorded in several parts succeeded in all of them.
 * `names` label the parts in messages (default: part 1, part 2, …).
 */
export function mergeManifests(manifests: Manifest[], names: string[] = []): Manifest {
  if (manifests.length === 0) {
    throw new StepError('MERGE_NO_PARTS', 'there is no manifest to merge', { hint: 'pass the folders of the parts (each holds manifest.json and release/) produced by the build jobs' });
  }
  const label = (i: number): string => names[i] ?? `part ${i + 1}`;
  const base = manifests[0] as Manifest;
  for (const [i, m] of manifests.entries()) {
    if (!same(m.plan, base.plan)) {
      throw new StepError('MERGE_PLAN_MISMATCH', `${label(i)} was built from another plan than ${label(0)} (${differingFields(m.plan, base.plan).join(', ')} differ)`, {
        details: differingFields(m.plan, base.plan).map((f) => `plan.${f}: ${JSON.stringify((base.plan as unknown as Record<string, unknown>)[f])} in ${label(0)}, ${JSON.stringify((m.plan as unknown as Record<string, unknown>)[f])} in ${label(i)}`),
        hint: 'every part must start from the one plan of this run (the plan job\'s artifact); re-run the build jobs of this run rather than mixing runs',
      });
    }
  }

  const artifacts = new Map<string, { artifact: Artifact; part: number }>();
  for (const [i, m] of manifests.entries()) {
    for (const a of m.artifacts) {
      const seen = artifacts.get(a.path);
      if (!seen) {
        artifacts.set(a.path, { artifact: structuredClone(a), part: i });
        continue;
      }
      if (same(seen.artifact, a)) continue;
      const b = seen.artifact;
      if (b.sha256 !== a.sha256 || b.sha512 !== a.sha512 || b.size !== a.size) {
        throw new StepError('MERGE_ARTIFACT_CONFLICT', `${a.path} has different bytes in ${label(seen.part)} and ${label(i)}`, {
          details: [`${label(seen.part)}: ${b.size} bytes, sha256 ${b.sha256}`, `${label(i)}: ${a.size} bytes, sha256 ${a.sha256}`],
          hint: `one release file has one set of bytes: make the build of ${a.path} reproducible (or give each platform's file its own name), and check that no part was altered`,
        });
      }
      throw new StepError('MERGE_ARTIFACT_CONFLICT', `${a.path} is recorded differently in ${label(seen.part)} and ${label(i)} (${differingFields(b, a).join(', ')} differ)`, {
        hint: 'the same file must be recorded the same way by every part; check which step wrote it in each part',
      });
    }
  }

  let native: Manifest['native'];
  for (const [i, m] of manifests.entries()) {
    for (const [platform, build] of Object.entries(m.native ?? {})) {
      native ??= {};
      const seen = native[platform];
      if (seen && !same(seen, build)) {
        throw new StepError('MERGE_NATIVE_CONFLICT', `the native build for ${platform} is recorded differently in two parts, the last being ${label(i)} (${differingFields(seen, build).join(', ')} differ)`, {
          hint: 'build each platform in one job of the matrix only',
        });
      }
      native[platform] = structuredClone(build);
    }
  }

  const byStep = new Map<string, Array<{ record: StepRecord; part: string }>>();
  for (const [i, m] of manifests.entries()) {
    for (const [name, record] of Object.entries(m.steps)) {
      if (record.state === 'failed' || record.state === 'running') {
        throw new StepError('MERGE_PART_INCOMPLETE', `step ${name} is ${record.state} in ${label(i)}`, {
          ...(record.error ? { details: [`${record.error.code}: ${record.error.message}`] } : {}),
          hint: 'merge only parts whose jobs finished; re-run the failed job of this run, then merge again',
        });
      }
      byStep.set(name, [...(byStep.get(name) ?? []), { record, part: label(i) }]);
    }
  }
  const steps: Record<string, StepRecord> = {};
  for (const name of [...byStep.keys()].sort(compareNames)) steps[name] = mergeStep(name, byStep.get(name) ?? []);

  const merged: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    plan: structuredClone(base.plan),
    artifacts: [...artifacts.values()].map((v) => v.artifact).sort((a, b) => compareNames(a.path, b.path)),
    steps,
    ...(native ? { native } : {}),
  };
  return parseManifest(JSON.parse(JSON.stringify(merged)) as unknown, 'the merged manifest');
}

export interface MergePartsInput {
  /** Folders of the parts: each holds manifest.json and release/ (a build job's out folder). */
  parts: string[];
  /** The merged release: <outDir>/manifest.json and <outDir>/release/. Must not hold a release yet. */
  outDir: string;
}

export interface MergePartsResult {
  manifest: Manifest;
  manifestPath: string;
  releaseDir: string;
  /** Release files in the merged folder. */
  files: number;
}

/** Every file under `dir`, relative, with `/`; a link or anything but a file or folder is refused. */
async function listFiles(dir: string, part: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(name);
      else if (e.isFile()) out.push(name);
      else {
        throw new StepError('MERGE_UNSAFE_FILE', `${name} in ${part} is ${e.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}`, {
          hint: 'release files are regular files; a part must hold only what its build step wrote',
        });
      }
    }
  };
  await walk('');
  return out.sort(compareNames);
}

function changed(file: string, part: string, a: Artifact, d: { size: number; sha256: string; sha512: string }): StepError {
  return new StepError('MERGE_FILE_CHANGED', `${a.path} in ${part} is not the file its manifest records`, {
    details: [`recorded: ${a.size} bytes, sha256 ${a.sha256}`, `on disk (${file}): ${d.size} bytes, sha256 ${d.sha256}`],
    hint: 'a part was altered after its job wrote it; re-run the job that produced it',
  });
}

/**
 * Merges the parts on disk: reads each part's manifest, merges them (mergeManifests), checks every
 * file of every part against its manifest by streamed digest, refuses stray or linked files, and
 * writes <outDir>/release and <outDir>/manifest.json. The merged folder appears whole or not at all.
 */
export async function mergeReleaseParts(input: MergePartsInput): Promise<MergePartsResult> {
  if (!input.parts.length) throw new StepError('MERGE_NO_PARTS', 'there is no part to merge', { hint: 'pass the folders of the parts (each holds manifest.json and release/)' });
  const parts = input.parts.map((p) => path.resolve(p));
  const outDir = path.resolve(input.outDir);
  const manifestPath = path.join(outDir, 'manifest.json');
  const releaseDir = path.join(outDir, 'release');
  if (parts.includes(outDir)) throw new StepError('MERGE_OUT_IS_PART', `${outDir} is one of the parts`, { hint: 'merge into a new folder' });

  const manifests: Manifest[] = [];
  for (const p of parts) manifests.push(await readManifest(path.join(p, 'manifest.json')));
  const merged = mergeManifests(manifests, parts);

  // Each part holds exactly the files its manifest lists, with the recorded bytes.
  const source = new Map<string, { file: string; part: string }>();
  for (const [i, p] of parts.entries()) {
    const m = manifests[i] as Manifest;
    const dir = path.join(p, 'release');
    const onDisk = new Set((await lstat(dir).catch(() => undefined)) ? await listFiles(dir, p) : []);
    const listed = new Set(m.artifacts.map((a) => a.path));
    const stray = [...onDisk].filter((f) => !listed.has(f));
    if (stray.length) {
      throw new StepError('MERGE_STRAY_FILE', `${stray.length} file(s) in ${dir} are not in its manifest: ${stray.slice(0, 3).join(', ')}`, {
        details: stray,
        hint: 'a part must hold only what its steps recorded; re-run the job that produced it',
      });
    }
    for (const a of m.artifacts) {
      if (!onDisk.has(a.path)) {
        throw new StepError('MERGE_FILE_MISSING', `${a.path} is in the manifest of ${p} but not in its release folder`, { hint: 're-run the job that produced this part' });
      }
      if (!source.has(a.path)) {
        source.set(a.path, { file: path.join(dir, a.path), part: p });
        continue; // checked as it is copied, below
      }
      const d = await hashFile(path.join(dir, a.path));
      if (d.size !== a.size || d.sha256 !== a.sha256 || d.sha512 !== a.sha512) throw changed(path.join(dir, a.path), p, a, d);
    }
  }

  if (await lstat(manifestPath).catch(() => undefined)) {
    throw new StepError('MERGE_OUT_NOT_EMPTY', `${outDir} already holds a manifest`, { hint: 'merge into a new, empty folder' });
  }
  const existingRelease = await readdir(releaseDir).catch(() => undefined);
  if (existingRelease?.length) throw new StepError('MERGE_OUT_NOT_EMPTY', `${releaseDir} already holds files`, { hint: 'merge into a new, empty folder' });

  await mkdir(outDir, { recursive: true });
  const staging = await mkdtemp(path.join(outDir, '.merge-'));
  let moved = false;
  try {
    for (const a of merged.artifacts) {
      const from = source.get(a.path) as { file: string; part: string };
      const to = path.join(staging, a.path);
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(from.file, to);
      const d = await hashFile(to);
      if (d.size !== a.size || d.sha256 !== a.sha256 || d.sha512 !== a.sha512) throw changed(from.file, from.part, a, d);
    }
    if (existingRelease) await rmdir(releaseDir);
    await rename(staging, releaseDir);
    moved = true;
    await writeManifest(manifestPath, merged);
  } catch (err) {
    await rm(moved ? releaseDir : staging, { recursive: true, force: true });
    throw err;
  }
  return { manifest: merged, manifestPath, releaseDir, files: merged.artifacts.length };
}
