import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { npmPurl } from './names.js';

/** One entry of `GET /-/npm/v1/attestations/<name>@<version>`, in npm's shape. */
export interface Attestation {
  predicateType: string;
  bundle: Record<string, unknown>;
}

export interface AttestationProblem {
  status: number;
  message: string;
}

/**
 * Checks an attestation a publisher sends against the version it is for, as npm's own verifier
 * (pacote) would: a Sigstore bundle holding a DSSE envelope whose in-toto statement has the
 * given predicate type and names the version's purl and the sha512 of its tarball. The bundle's
 * signature and certificate are not checked here.
 */
export function checkAttestation(body: unknown, name: string, version: string, integrity: string | undefined): Attestation | AttestationProblem {
  const bad = (message: string): AttestationProblem => ({ status: 422, message });
  if (!body || typeof body !== 'object') return { status: 400, message: 'the body must be {"predicateType": "...", "bundle": {...}}' };
  const { predicateType, bundle } = body as { predicateType?: unknown; bundle?: unknown };
  if (typeof predicateType !== 'string' || predicateType === '') return { status: 400, message: 'predicateType must be a non-empty string' };
  if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle)) return { status: 400, message: 'bundle must be a Sigstore bundle object' };
  const b = bundle as { mediaType?: unknown; dsseEnvelope?: { payload?: unknown; payloadType?: unknown; signatures?: unknown } };
  if (typeof b.mediaType !== 'string' || !b.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) return bad(`bundle.mediaType ${JSON.stringify(b.mediaType)} is not a Sigstore bundle media type`);
  const env = b.dsseEnvelope;
  if (!env || typeof env.payload !== 'string' || !Array.isArray(env.signatures) || env.signatures.length === 0) return bad('bundle has no DSSE envelope with a payload and a signature');
  if (env.payloadType !== 'application/vnd.in-toto+json') return bad(`DSSE payloadType ${JSON.stringify(env.payloadType)} is not application/vnd.in-toto+json`);
  let statement: { predicateType?: unknown; subject?: Array<{ name?: unknown; digest?: { sha512?: unknown } }> };
  try {
    statement = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
  } catch {
    return bad('the DSSE payload is not a base64 JSON in-toto statement');
  }
  if (statement.predicateType !== predicateType) return bad(`the statement's predicateType ${JSON.stringify(statement.predicateType)} is not ${JSON.stringify(predicateType)}`);
  // A statement may name several packages (one release's tarballs); the one for this version must be among them.
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const purl = npmPurl(name, version);
  const subject = subjects.find((s) => s?.name === purl) ?? subjects[0];
  if (!subject || subject.name !== purl) return bad(`no subject of the statement is ${purl} (it names ${subjects.map((s) => JSON.stringify(s?.name)).join(', ') || 'nothing'})`);
  const expected = integrity?.startsWith('sha512-') ? Buffer.from(integrity.slice(7), 'base64').toString('hex') : undefined;
  if (!expected) return bad(`${name}@${version} has no sha512 integrity to check the subject against`);
  if (subject.digest?.sha512 !== expected) return bad(`the statement's subject digest sha512:${String(subject.digest?.sha512)} is not the tarball's sha512:${expected}`);
  return { predicateType, bundle: bundle as Record<string, unknown> };
}

/** Attestations on disk, one JSON file per version: `<dir>/<encoded name>/<version>.json`. */
export class AttestationStore {
  /** Writes to one version run one after another. */
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(private readonly dir: string) {}

  private file(name: string, version: string): string {
    return path.join(this.dir, encodeURIComponent(name), `${version}.json`);
  }

  async get(name: string, version: string): Promise<Attestation[] | undefined> {
    try {
      const { attestations } = JSON.parse(await readFile(this.file(name, version), 'utf8')) as { attestations: Attestation[] };
      return attestations;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Adds an attestation. One per predicate type: the same one again is accepted unchanged
   * ('same'), a different one for a predicate type already stored is refused ('conflict').
   */
  async put(name: string, version: string, attestation: Attestation): Promise<{ outcome: 'created' | 'same' | 'conflict'; attestations: Attestation[] }> {
    const key = `${name}@${version}`;
    const run = (this.pending.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => this.write(name, version, attestation));
    this.pending.set(key, run);
    try {
      return await run;
    } finally {
      if (this.pending.get(key) === run) this.pending.delete(key);
    }
  }

  private async write(name: string, version: string, attestation: Attestation): Promise<{ outcome: 'created' | 'same' | 'conflict'; attestations: Attestation[] }> {
    const current = (await this.get(name, version)) ?? [];
    const existing = current.find((a) => a.predicateType === attestation.predicateType);
    if (existing) {
      const same = JSON.stringify(existing.bundle) === JSON.stringify(attestation.bundle);
      return { outcome: same ? 'same' : 'conflict', attestations: current };
    }
    const next = [...current, attestation];
    const file = this.file(name, version);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ attestations: next }, null, 2)}\n`);
    await rename(tmp, file);
    return { outcome: 'created', attestations: next };
  }
}
