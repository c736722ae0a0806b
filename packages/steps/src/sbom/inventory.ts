import type { Artifact, ArtifactKind, Manifest } from '@mcp-release/manifest';
import type { Exec } from '@mcp-release/pipeline';
import { collectNativeBinaries, type SbomNativeBinary } from './binaries.js';
import { byCodePoint, optionText } from './ids.js';
import { collectModelsArchive, type SbomModelsArchive } from './models.js';
import { collectNpmDependencies, npmId, type SbomNpmInventory } from './npm.js';

export const SBOM_SPDX_FILE = 'sbom.spdx.json';
export const SBOM_CYCLONEDX_FILE = 'sbom.cdx.json';

/**
 * Release files an SBOM does not list: Sigstore bundles and provenance (made after it, about the
 * files), SHA256SUMS (made after it, and it covers the SBOMs) and the SBOMs themselves.
 */
/**
 * Files the SBOMs do not list: signatures and statements, and what is written after the SBOMs
 * (verify.sh, SHA256SUMS), so that the SBOMs are the same on a first run and on a re-run.
 */
export const SBOM_UNLISTED_KINDS: ReadonlySet<ArtifactKind> = new Set<ArtifactKind>(['sigstore-bundle', 'provenance', 'checksums', 'verify-script', 'sbom-spdx', 'sbom-cyclonedx']);

/** The release files the SBOMs list, sorted by path. */
export function sbomListedArtifacts(manifest: Manifest): Artifact[] {
  return manifest.artifacts.filter((a) => !SBOM_UNLISTED_KINDS.has(a.kind)).sort((a, b) => byCodePoint(a.path, b.path));
}

/** Everything the two SBOM documents are written from; both formats say the same. */
export interface SbomInventory {
  release: { tag: string; commit: string; timestamp: string };
  /** Every listed release file, sorted by path. */
  files: Artifact[];
  /** Undefined when the plan has no npm packages. */
  npm: SbomNpmInventory | undefined;
  /** Planned npm package id (`name@version`) → its packed tarball in the release. */
  tarballs: Record<string, Artifact>;
  native: SbomNativeBinary[];
  models: SbomModelsArchive[];
}

export interface CollectSbomOptions {
  manifest: Manifest;
  releaseDir: string;
  repoRoot: string;
  exec: Exec;
  warn: (message: string) => void;
}

/** `2026-03-04T05:06:07Z`: whole seconds in UTC, the form SPDX asks for. */
export function sbomTimestamp(timestamp: string): string {
  return new Date(timestamp).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export async function collectSbomInventory(options: CollectSbomOptions): Promise<SbomInventory> {
  const { manifest } = options;
  const files = sbomListedArtifacts(manifest);
  const npm = manifest.plan.packages.length
    ? await collectNpmDependencies({ repoRoot: options.repoRoot, packages: manifest.plan.packages, warn: options.warn })
    : undefined;
  const tarballs: Record<string, Artifact> = {};
  for (const a of files) {
    if (a.kind !== 'npm-tarball' || typeof a.meta?.name !== 'string' || typeof a.meta.version !== 'string') continue;
    const id = npmId(a.meta.name, a.meta.version);
    if (npm?.roots.includes(id)) tarballs[id] = a;
  }
  const native = await collectNativeBinaries({ ...manifest, artifacts: files }, options.releaseDir, options.exec);
  const models: SbomModelsArchive[] = [];
  for (const a of files) if (a.kind === 'models-archive') models.push(await collectModelsArchive(a, options.releaseDir));
  return {
    release: { tag: manifest.plan.tag, commit: manifest.plan.commit, timestamp: sbomTimestamp(manifest.plan.timestamp) },
    files,
    npm,
    tarballs,
    native,
    models,
  };
}

/** What a native binary was built from, as `name=value` facts shared by both formats. */
export function nativeFacts(bin: SbomNativeBinary): Array<[string, string]> {
  const b = bin.build;
  const facts: Array<[string, string]> = [
    ['platform', bin.artifact.platform],
    ['native:project', `${b.project.name} ${b.project.version}`],
    ['source:commit', b.source.commit ?? 'unknown (not a git checkout)'],
    ['source:fingerprint', b.source.fingerprint],
    ['meson:buildtype', b.buildtype],
  ];
  if (b.source.path) facts.push(['source:path', b.source.path]);
  if (b.mesonVersion) facts.push(['meson:version', b.mesonVersion]);
  if (bin.target) facts.push(['meson:target', bin.target]);
  for (const [name, value] of Object.entries(b.options)) facts.push([`meson:option:${name}`, optionText(value)]);
  for (const c of b.compilers ?? []) facts.push([`compiler:${c.language}`, `${c.id} ${c.version}`]);
  if (bin.soname) facts.push(['elf:soname', bin.soname]);
  for (const l of bin.links) facts.push(['elf:link', l]);
  for (const n of bin.needed) facts.push(['elf:needed', n]);
  return facts.sort((x, y) => byCodePoint(x[0], y[0]) || byCodePoint(x[1], y[1]));
}

/** The meson subprojects of a native build, with versions, sorted. */
export function nativeSubprojects(bin: SbomNativeBinary): Array<{ name: string; version?: string }> {
  const list = (bin.build.targets as { subprojects?: unknown } | undefined)?.subprojects;
  if (!Array.isArray(list)) return [];
  return list
    .filter((s): s is { name: string; version: unknown } => !!s && typeof (s as { name?: unknown }).name === 'string')
    .map((s) => ({ name: s.name, ...(typeof s.version === 'string' && s.version !== 'undefined' ? { version: s.version } : {}) }))
    .sort((a, b) => byCodePoint(a.name, b.name) || byCodePoint(a.version ?? '', b.version ?? ''));
}

/** The release library a NEEDED entry names (by soname, symlink name or file name), on the same platform. */
export function neededRelease(inv: SbomInventory, bin: SbomNativeBinary, needed: string): SbomNativeBinary | undefined {
  return inv.native.find(
    (o) =>
      o !== bin &&
      o.role === 'library' &&
      o.artifact.platform === bin.artifact.platform &&
      (o.soname === needed || o.links.includes(needed) || o.artifact.meta?.file === needed || o.artifact.path === needed),
  );
}
