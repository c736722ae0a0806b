import { readFile } from 'node:fs/promises';
import { hashFile, resolveInside, type Manifest } from '@mcp-release/manifest';
import { StepError } from '../../errors.js';
import { NPM_PROVENANCE_FILE, npmPurl, statementFromBundle } from '../../provenance/statement.js';
import { escapeName, registryFetch, TransientError } from './registry.js';

/** The toolkit's npm-shaped provenance (one DSSE Sigstore bundle over every tarball), as the provenance step recorded it. */
export interface NpmProvenance {
  predicateType: string;
  bundle: Record<string, unknown>;
  /** The `pkg:npm/…` subjects with their sha512 (hex). */
  subjects: Map<string, string>;
}

/**
 * Reads `npm-provenance.sigstore.json` from the release folder: it must be the file the provenance
 * step recorded (same digests) and hold an in-toto statement. Small, so read whole.
 */
export async function loadNpmProvenance(manifest: Manifest, releaseDir: string): Promise<NpmProvenance> {
  const artifact = manifest.artifacts.find((a) => a.kind === 'provenance' && a.path === NPM_PROVENANCE_FILE);
  if (!artifact) {
    throw new StepError('NPM_PROVENANCE_MISSING', `the manifest records no ${NPM_PROVENANCE_FILE}: without it the packages would be published with no provenance`, {
      hint: 'run the provenance step before publish-npm (it attests the npm tarballs), or set publish.npm.provenance: false in the release policy to publish without provenance',
    });
  }
  const file = await resolveInside(releaseDir, artifact.path, 'release file');
  const digests = await hashFile(file);
  if (digests.sha256 !== artifact.sha256 || digests.size !== artifact.size) {
    throw new StepError('NPM_PROVENANCE_CHANGED', `${artifact.path} changed after ${artifact.producedBy} recorded it`, {
      hint: `something modified the release folder; re-run ${artifact.producedBy} to attest the tarballs again`,
    });
  }
  let bundle: Record<string, unknown>;
  try {
    bundle = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new StepError('NPM_PROVENANCE_CHANGED', `${artifact.path} is not JSON`, { hint: `re-run ${artifact.producedBy}`, cause: err });
  }
  const statement = statementFromBundle(bundle);
  const subjects = new Map<string, string>();
  for (const s of Array.isArray(statement.subject) ? statement.subject : []) {
    if (typeof s?.name === 'string' && typeof s.digest?.sha512 === 'string') subjects.set(s.name, s.digest.sha512);
  }
  return { predicateType: statement.predicateType, bundle, subjects };
}

/** The provenance must name this exact version with this tarball's sha512, or it must not be published. */
export function assertAttests(provenance: NpmProvenance, name: string, version: string, sha512Hex: string): void {
  const purl = npmPurl(name, version);
  const digest = provenance.subjects.get(purl);
  if (digest !== sha512Hex) {
    throw new StepError(
      'NPM_PROVENANCE_MISMATCH',
      digest === undefined
        ? `${NPM_PROVENANCE_FILE} does not attest ${purl}`
        : `${NPM_PROVENANCE_FILE} attests ${purl} with sha512 ${digest.slice(0, 16)}…, but the tarball is ${sha512Hex.slice(0, 16)}…`,
      { hint: 'the provenance was made for other tarballs; re-run build-npm and the steps after it (provenance included) so that they describe the same files' },
    );
  }
}

export function attestationsUrl(registry: string, name: string, version: string): string {
  return new URL(`-/npm/v1/attestations/${escapeName(name)}@${version}`, registry).href;
}

/** Whether the registry already serves exactly this attestation for the version. */
export async function hasAttestation(registry: string, name: string, version: string, provenance: NpmProvenance): Promise<boolean> {
  const url = attestationsUrl(registry, name, version);
  const res = await registryFetch(url, { headers: { accept: 'application/json' } });
  if (res.status >= 500) {
    await res.body?.cancel();
    throw new TransientError(`GET ${url}: HTTP ${res.status}`, res.status);
  }
  if (!res.ok) {
    await res.body?.cancel();
    return false;
  }
  const body = (await res.json().catch(() => ({}))) as { attestations?: Array<{ predicateType?: unknown; bundle?: unknown }> };
  const wanted = JSON.stringify(provenance.bundle);
  return (body.attestations ?? []).some((a) => a.predicateType === provenance.predicateType && JSON.stringify(a.bundle) === wanted);
}

/** Stores the provenance for a published version with the package's exchanged token. */
export async function putAttestation(registry: string, name: string, version: string, provenance: NpmProvenance, token: string): Promise<'created' | 'same'> {
  const url = attestationsUrl(registry, name, version);
  const res = await registryFetch(url, {
    method: 'PUT',
    headers: { accept: 'application/json', 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ predicateType: provenance.predicateType, bundle: provenance.bundle }),
  });
  const text = await res.text();
  if (res.status >= 500) throw new TransientError(`PUT ${url}: HTTP ${res.status}`, res.status);
  if (res.status === 201) return 'created';
  if (res.ok) return 'same';
  let message = text.slice(0, 300);
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    message = String(body.error ?? body.message ?? message);
  } catch {
    // keep the text
  }
  const hints: Record<number, string> = {
    401: 'the exchanged publish token was refused; re-run the job for a fresh exchange',
    403: 'the exchanged token belongs to another package; check the package name',
    404: `the registry does not have ${name}@${version}; the publish did not land`,
    409: `${name}@${version} already has a different provenance on the registry: it was published by another run; a version cannot be attested twice`,
    422: `the registry does not accept ${NPM_PROVENANCE_FILE} for ${name}@${version}; re-run the provenance step for these tarballs`,
  };
  throw new StepError('NPM_ATTESTATION_REFUSED', `the registry refused the provenance of ${name}@${version} (HTTP ${res.status}: ${message})`, {
    hint: `${hints[res.status] ?? 'check the registry\'s answer above'}. The package is published; re-running the release stores the provenance without publishing again`,
  });
}
