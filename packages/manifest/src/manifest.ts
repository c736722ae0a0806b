import { readFile } from 'node:fs/promises';
import Ajv, { type ErrorObject } from 'ajv';
import schema from '../../../policies/schemas/manifest.schema.json' with { type: 'json' };
import { writeFileAtomic } from './atomic.js';
import { canonicalJson } from './canonical-json.js';
import { ManifestError } from './errors.js';
import { assertSafeRelativePath } from './paths.js';
import { MANIFEST_SCHEMA_VERSION, type Artifact, type ArtifactKind, type Manifest, type Plan } from './types.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<Manifest>(schema);

/** `/artifacts/2/sha256` → `artifacts[2].sha256` */
export function fieldName(instancePath: string, missing?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (missing) parts.push(missing);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out || '(document root)';
}

export function describeSchemaErrors(errors: ErrorObject[] | null | undefined): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const e of errors ?? []) {
    const missing = e.keyword === 'required' ? String((e.params as { missingProperty: string }).missingProperty) : undefined;
    const extra = e.keyword === 'additionalProperties' ? String((e.params as { additionalProperty: string }).additionalProperty) : undefined;
    const field = fieldName(e.instancePath, missing ?? extra);
    let text: string;
    if (missing) text = `${field} is required`;
    else if (extra) text = `${field} is not allowed here`;
    else if (e.keyword === 'enum') text = `${field} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    else text = `${field} ${e.message ?? 'is invalid'}`;
    if (!seen.has(text)) {
      seen.add(text);
      lines.push(text);
    }
  }
  return lines;
}

/** Validates an already-parsed manifest value. `source` names it in messages. */
export function parseManifest(value: unknown, source = 'manifest'): Manifest {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ManifestError('MANIFEST_INVALID', `${source} is not a JSON object`, {
      hint: 'point --manifest at a manifest.json written by mcp-release, or run `mcp-release plan` to start a new one',
    });
  }
  const version = (value as { schemaVersion?: unknown }).schemaVersion;
  if (typeof version === 'number' && Number.isInteger(version) && version > MANIFEST_SCHEMA_VERSION) {
    throw new ManifestError(
      'MANIFEST_TOO_NEW',
      `${source} has schemaVersion ${version}, written by a newer mcp-release; this one reads schemaVersion ${MANIFEST_SCHEMA_VERSION}`,
      { hint: 'upgrade mcp-release to the version that wrote this manifest (npm install mcp-release@latest), or re-plan the release with this version' },
    );
  }
  if (version !== MANIFEST_SCHEMA_VERSION) {
    throw new ManifestError('MANIFEST_SCHEMA_VERSION', `${source}: field schemaVersion is ${JSON.stringify(version)}; expected ${MANIFEST_SCHEMA_VERSION}`, {
      hint: 'this is not a manifest this mcp-release can read; re-plan the release (mcp-release plan) to write a fresh one',
    });
  }
  // Unsafe paths first: they get their own code rather than a pattern mismatch.
  const listed = (value as { artifacts?: unknown }).artifacts;
  if (Array.isArray(listed)) {
    listed.forEach((a: unknown, i) => {
      const p = (a as { path?: unknown } | null)?.path;
      if (typeof p === 'string') assertSafeRelativePath(p, `${source}: artifacts[${i}].path`);
    });
  }
  if (!validate(value)) {
    const details = describeSchemaErrors(validate.errors);
    throw new ManifestError('MANIFEST_INVALID', `${source} does not match the manifest schema: ${details[0] ?? 'invalid'}`, {
      details,
      hint: 'the manifest was edited by hand or damaged; restore it from the run that wrote it, or re-plan the release',
    });
  }
  const seen = new Set<string>();
  value.artifacts.forEach((a, i) => {
    assertSafeRelativePath(a.path, `artifacts[${i}].path`);
    if (seen.has(a.path)) {
      throw new ManifestError('MANIFEST_DUPLICATE_ARTIFACT', `${source}: artifacts[${i}].path ${JSON.stringify(a.path)} is listed twice`, {
        hint: 'each release file may appear once; remove the duplicate entry or re-run the step that wrote it',
      });
    }
    seen.add(a.path);
  });
  return value;
}

export async function readManifest(file: string): Promise<Manifest> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ManifestError('MANIFEST_MISSING', `no manifest at ${file}`, {
        hint: 'run the release from its first step (mcp-release rehearse, or mcp-release plan) or pass the right --out / --manifest',
        cause: err,
      });
    }
    throw new ManifestError('MANIFEST_UNREADABLE', `cannot read ${file}: ${(err as Error).message}`, { cause: err, hint: 'check the file permissions' });
  }
  let text: string;
  try {
    // fatal: bytes that are not UTF-8 are damage, never silently turned into U+FFFD in a file name
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new ManifestError('MANIFEST_INVALID', `${file} is not UTF-8 text`, {
      cause: err,
      hint: 'the manifest was damaged; restore it from the run that wrote it, or re-plan the release',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ManifestError('MANIFEST_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
      hint: 'the manifest was damaged; restore it from the run that wrote it, or re-plan the release',
    });
  }
  const manifest = parseManifest(value, file);
  manifest.artifacts.sort((a, b) => compareNames(a.path, b.path));
  return manifest;
}

/** Serialises deterministically: sorted keys, artifacts sorted by path. */
export function serializeManifest(manifest: Manifest): string {
  const sorted: Manifest = { ...manifest, artifacts: [...manifest.artifacts].sort((a, b) => compareNames(a.path, b.path)) };
  return canonicalJson(sorted);
}

/** Validates, then writes atomically: a failed write never leaves a partial manifest. */
export async function writeManifest(file: string, manifest: Manifest): Promise<void> {
  parseManifest(JSON.parse(JSON.stringify(manifest)) as unknown, 'the manifest about to be written');
  await writeFileAtomic(file, serializeManifest(manifest));
}

export function newManifest(plan: Plan): Manifest {
  return { schemaVersion: MANIFEST_SCHEMA_VERSION, plan, artifacts: [], steps: {} };
}

/** Byte-order comparison of names (code points), the order of SHA256SUMS and of the manifest. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Adds or replaces an artifact by path, keeping the list sorted by path: the order in memory is
 * the order on disk, so anything derived from the list (fingerprints) is the same after a reload.
 */
export function upsertArtifact(manifest: Manifest, artifact: Artifact): void {
  assertSafeRelativePath(artifact.path);
  manifest.artifacts = [...manifest.artifacts.filter((a) => a.path !== artifact.path), artifact].sort((a, b) => compareNames(a.path, b.path));
}

export function removeArtifacts(manifest: Manifest, predicate: (a: Artifact) => boolean): Artifact[] {
  const removed = manifest.artifacts.filter(predicate);
  manifest.artifacts = manifest.artifacts.filter((a) => !predicate(a));
  return removed;
}

export function artifactsOfKind(manifest: Manifest, ...kinds: ArtifactKind[]): Artifact[] {
  return manifest.artifacts.filter((a) => kinds.includes(a.kind)).sort((a, b) => compareNames(a.path, b.path));
}

/** Sigstore bundles: signatures (`<file>.sigstore.json`) and signed provenance statements. */
export function isBundle(a: Artifact): boolean {
  return a.kind === 'sigstore-bundle' || a.kind === 'provenance';
}

/** Release files that SHA256SUMS covers: everything but itself and the Sigstore bundles. */
export function checksummedArtifacts(manifest: Manifest): Artifact[] {
  return manifest.artifacts.filter((a) => a.kind !== 'checksums' && !isBundle(a)).sort((a, b) => compareNames(a.path, b.path));
}

/** Release files that get a `<file>.sigstore.json`: every file that is not itself a bundle, SHA256SUMS included. */
export function signedArtifacts(manifest: Manifest): Artifact[] {
  return manifest.artifacts.filter((a) => !isBundle(a)).sort((a, b) => compareNames(a.path, b.path));
}
