import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { X509Certificate as CoreCertificate, json } from '@sigstore/core';
import { LabError } from '../errors.js';
import { readBody, sendJson, type LabService } from '../harness.js';
import { curveOf, verifyDigest } from './ecdsa.js';
import { MerkleTree } from './merkle.js';
import { certificatePem, pemToDer, type Material } from './pki.js';

/**
 * Rekor's v1 API over a real RFC 6962 log kept by the lab: sequential indexes, inclusion proofs,
 * signed entry timestamps and signed checkpoints. Accepts hashedrekord and dsse entries (v0.0.1),
 * verifies their signatures and stores them in Rekor's canonical body shape.
 */

interface StoredEntry {
  /** Canonical body, base64. */
  body: string;
  integratedTime: number;
  leafHash: string;
}

export interface RekorOptions {
  material: Material;
  clock: () => Date;
  stateDir?: string;
}

const HASH_LENGTHS: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const invalid = (reason: string): Refusal => new Refusal(400, `error processing entry: ${reason}`);

function b64(value: unknown, field: string): Buffer {
  if (typeof value !== 'string' || value === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw invalid(`${field} must be non-empty base64`);
  return Buffer.from(value, 'base64');
}

/** The key in a base64 PEM (certificate or public key), and the PEM as Rekor stores it. */
function verifierKey(content: unknown, field: string): { key: KeyObject; canonical: string } {
  const pem = b64(content, field).toString('utf8');
  try {
    if (pem.includes('-----BEGIN CERTIFICATE-----')) {
      const raw = pemToDer(pem);
      const cert = CoreCertificate.parse(raw as Buffer<ArrayBuffer>);
      return { key: createPublicKey({ key: cert.publicKey, format: 'der', type: 'spki' }), canonical: certificatePem(raw) };
    }
    const key = createPublicKey(pem);
    const spki = key.export({ format: 'der', type: 'spki' }).toString('base64');
    return { key, canonical: `-----BEGIN PUBLIC KEY-----\n${(spki.match(/.{1,64}/g) ?? []).join('\n')}\n-----END PUBLIC KEY-----\n` };
  } catch (err) {
    throw invalid(`${field} is not a PEM certificate or public key: ${(err as Error).message}`);
  }
}

/** The digest sigstore's default verifier pairs with this key. */
function digestFor(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'ed25519') return null;
  const crv = curveOf(key);
  return crv === 'P-384' ? 'sha384' : crv === 'P-521' ? 'sha512' : 'sha256';
}

const pae = (type: string, payload: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

function hashedRekord(spec: Obj): Obj {
  const signature = obj(spec.signature);
  const sig = b64(signature.content, 'spec.signature.content');
  const { key, canonical } = verifierKey(obj(signature.publicKey).content, 'spec.signature.publicKey.content');
  const hash = obj(obj(spec.data).hash);
  const algorithm = typeof hash.algorithm === 'string' ? hash.algorithm : 'sha256';
  const length = HASH_LENGTHS[algorithm];
  if (!length) throw invalid(`spec.data.hash.algorithm ${algorithm} is not one of sha256, sha384, sha512`);
  if (typeof hash.value !== 'string' || !new RegExp(`^[0-9a-fA-F]{${length * 2}}$`).test(hash.value)) throw invalid('invalid value for hash');
  if (key.asymmetricKeyType !== 'ec') throw invalid(`the lab Rekor verifies hashedrekord signatures of ECDSA keys only, not ${key.asymmetricKeyType ?? 'unknown'}`);
  if (!verifyDigest(key, Buffer.from(hash.value, 'hex'), sig)) throw invalid('verifying signature: invalid signature when validating ASN.1 encoded signature');
  return {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm, value: hash.value.toLowerCase() } },
      signature: { content: sig.toString('base64'), publicKey: { content: Buffer.from(canonical).toString('base64') } },
    },
  };
}

function dsse(spec: Obj): Obj {
  const proposed = obj(spec.proposedContent);
  if (typeof proposed.envelope !== 'string') throw invalid('proposed content envelope is missing');
  let env: Obj;
  try {
    env = obj(JSON.parse(proposed.envelope));
  } catch (err) {
    throw invalid(`the envelope is not JSON: ${(err as Error).message}`);
  }
  if (typeof env.payloadType !== 'string') throw invalid('the envelope has no payloadType');
  const payload = b64(env.payload, 'envelope.payload');
  const sigs = Array.isArray(env.signatures) ? env.signatures.map(obj) : [];
  if (sigs.length === 0) throw invalid('DSSE envelope must contain 1 or more signatures');
  const verifiers = (Array.isArray(proposed.verifiers) ? proposed.verifiers : []).map((v, i) => verifierKey(v, `spec.proposedContent.verifiers[${i}]`));
  if (verifiers.length === 0) throw invalid('at least one verifier must be provided');
  const message = pae(env.payloadType, payload);
  const signatures = sigs.map((s, i) => {
    const sig = b64(s.sig, `envelope.signatures[${i}].sig`);
    const match = verifiers.find((v) => {
      try {
        return verify(digestFor(v.key), message, v.key, sig);
      } catch {
        return false;
      }
    });
    if (!match) throw invalid(`could not verify envelope signature ${i} with any of the verifiers`);
    return { signature: s.sig as string, verifier: Buffer.from(match.canonical).toString('base64') };
  });
  signatures.sort((a, b) => (a.signature < b.signature ? -1 : a.signature > b.signature ? 1 : 0));
  const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(proposed.envelope) },
      payloadHash: { algorithm: 'sha256', value: sha256(payload) },
      signatures,
    },
  };
}

/** Validates a proposed entry and returns its canonical body. */
export function canonicalBody(proposed: unknown): Buffer {
  const entry = obj(proposed);
  const kind = entry.kind;
  const version = entry.apiVersion;
  let canonical: Obj;
  if (kind === 'hashedrekord' && version === '0.0.1') canonical = hashedRekord(obj(entry.spec));
  else if (kind === 'dsse' && version === '0.0.1') canonical = dsse(obj(entry.spec));
  else throw invalid(`${String(kind)} ${String(version)} is not supported by the lab Rekor (hashedrekord 0.0.1 and dsse 0.0.1 are)`);
  return Buffer.from(json.canonicalize(canonical), 'utf8');
}

export class Rekor {
  private readonly entries: StoredEntry[] = [];
  private readonly byLeaf = new Map<string, number>();
  private readonly tree = new MerkleTree();
  private writes: Promise<void> = Promise.resolve();
  private service: LabService | undefined;

  constructor(private readonly options: RekorOptions) {}

  private get file(): string | undefined {
    return this.options.stateDir ? path.join(this.options.stateDir, 'sigstore', 'rekor-log.jsonl') : undefined;
  }

  get logId(): Buffer {
    return this.options.material.rekor.keyId;
  }

  get size(): number {
    return this.entries.length;
  }

  /** The 16-hex-digit tree ID that prefixes entry UUIDs. */
  private get treeHex(): string {
    return BigInt(this.options.material.rekor.treeId).toString(16).padStart(16, '0');
  }

  /** Host and port of the service: the checkpoint origin and signer name, as Rekor's hostname. */
  get hostname(): string {
    return this.service ? new URL(this.service.url).host : 'rekor.lab.invalid';
  }

  /**
   * Reads the persisted log, or starts a new one with a genesis entry at index 0. Bundles keep
   * protobuf JSON, which drops zero values: an entry at index 0 would reach verifiers without its
   * `logIndex` (@freedomofpress/sigstore-browser then reads NaN). Real Rekor never hands out 0.
   */
  async load(): Promise<void> {
    await this.read();
    if (this.entries.length === 0) {
      const index = this.add(this.genesis(), Math.floor(this.options.clock().getTime() / 1000));
      await this.persist(index);
    }
  }

  /** A hashedrekord entry by a throwaway key over a statement naming this log. */
  private genesis(): Buffer {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const statement = Buffer.from(`mcp-release lab transparency log ${this.options.material.rekor.treeId}: genesis entry`);
    return canonicalBody({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(statement).digest('hex') } },
        signature: { content: sign('sha256', statement, privateKey).toString('base64'), publicKey: { content: Buffer.from(publicKey.export({ format: 'pem', type: 'spki' })).toString('base64') } },
      },
    });
  }

  private async read(): Promise<void> {
    const file = this.file;
    if (!file) return;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return;
    }
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    for (const [i, line] of lines.entries()) {
      let entry: { i: number; t: number; b: string };
      try {
        entry = JSON.parse(line) as { i: number; t: number; b: string };
      } catch (err) {
        if (i === lines.length - 1) break; // a write cut short by a crash; the entry was never acknowledged
        throw new LabError('LAB_REKOR_LOG_CORRUPT', `line ${i + 1} of ${file} is not JSON`, { cause: err, hint: `restore the file or delete ${file} (all logged entries are then lost)` });
      }
      if (entry.i !== this.entries.length) {
        throw new LabError('LAB_REKOR_LOG_CORRUPT', `line ${i + 1} of ${file} holds log index ${entry.i}, expected ${this.entries.length}`, { hint: `restore the file or delete ${file} (all logged entries are then lost)` });
      }
      this.add(Buffer.from(entry.b, 'base64'), entry.t);
    }
  }

  private add(body: Buffer, integratedTime: number): number {
    const leaf = MerkleTree.leafHash(body);
    const index = this.tree.append(leaf);
    const leafHash = leaf.toString('hex');
    this.entries.push({ body: body.toString('base64'), integratedTime, leafHash });
    this.byLeaf.set(leafHash, index);
    return index;
  }

  private persist(index: number): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const entry = this.entries[index] as StoredEntry;
    const line = `${JSON.stringify({ i: index, t: entry.integratedTime, b: entry.body })}\n`;
    const next = this.writes.then(async () => {
      await mkdir(path.dirname(file), { recursive: true });
      await appendFile(file, line, { mode: 0o600 });
    });
    this.writes = next.catch(() => undefined);
    return next;
  }

  /** Waits for pending writes of the log file. */
  async flush(): Promise<void> {
    await this.writes;
  }

  entryId(index: number): string {
    return `${this.treeHex}${(this.entries[index] as StoredEntry).leafHash}`;
  }

  /** A signed checkpoint (signed note) for the tree of this size. */
  checkpoint(size = this.size): string {
    const { rekor } = this.options.material;
    const host = this.hostname;
    const note = `${host} - ${rekor.treeId}\n${size}\n${this.tree.root(size).toString('base64')}\n`;
    const signature = sign('sha256', Buffer.from(note, 'utf8'), rekor.privateKey);
    return `${note}\n\u2014 ${host} ${Buffer.concat([rekor.keyId.subarray(0, 4), signature]).toString('base64')}\n`;
  }

  /** The entry as Rekor's API returns it: `{ <uuid>: { body, integratedTime, logID, logIndex, verification } }`. */
  entry(index: number): Record<string, unknown> {
    const stored = this.entries[index] as StoredEntry;
    const size = this.size;
    const logID = this.logId.toString('hex');
    const set = sign('sha256', Buffer.from(json.canonicalize({ body: stored.body, integratedTime: stored.integratedTime, logID, logIndex: index }), 'utf8'), this.options.material.rekor.privateKey);
    return {
      [this.entryId(index)]: {
        body: stored.body,
        integratedTime: stored.integratedTime,
        logID,
        logIndex: index,
        verification: {
          inclusionProof: {
            checkpoint: this.checkpoint(size),
            hashes: this.tree.proof(index, size).map((h) => h.toString('hex')),
            logIndex: index,
            rootHash: this.tree.root(size).toString('hex'),
            treeSize: size,
          },
          signedEntryTimestamp: set.toString('base64'),
        },
      },
    };
  }

  routes(service: LabService): void {
    this.service = service;
    const handle =
      (fn: (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL) => Promise<void> | void) =>
      async (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL): Promise<void> => {
        try {
          await fn(req, res, params, url);
        } catch (err) {
          if (!(err instanceof Refusal)) throw err;
          sendJson(res, err.status, { code: err.status, message: err.message }, err.headers);
        }
      };

    service.route(
      'POST',
      '/api/v1/log/entries',
      handle(async (req, res) => {
        let proposed: unknown;
        try {
          proposed = JSON.parse((await readBody(req, 32 * 1024 * 1024)).toString('utf8'));
        } catch (err) {
          throw new Refusal(400, `error processing entry: the body is not JSON: ${(err as Error).message}`);
        }
        const body = canonicalBody(proposed);
        const existing = this.byLeaf.get(MerkleTree.leafHash(body).toString('hex'));
        if (existing !== undefined) {
          const id = this.entryId(existing);
          throw new Refusal(409, `an equivalent entry already exists in the transparency log with UUID ${id}`, { location: `/api/v1/log/entries/${id}` });
        }
        const index = this.add(body, Math.floor(this.options.clock().getTime() / 1000));
        await this.persist(index);
        const id = this.entryId(index);
        sendJson(res, 201, this.entry(index), { location: `/api/v1/log/entries/${id}`, etag: id });
      }),
    );

    service.route(
      'GET',
      '/api/v1/log/entries',
      handle((_req, res, _p, url) => {
        const raw = url.searchParams.get('logIndex');
        if (raw === null || !/^\d+$/.test(raw)) throw new Refusal(400, 'logIndex must be given as a non-negative integer');
        const index = Number(raw);
        if (index >= this.size) throw new Refusal(404, `no entry at log index ${index}; the log has ${this.size}`);
        sendJson(res, 200, this.entry(index));
      }),
    );

    service.route(
      'GET',
      '/api/v1/log/entries/:uuid',
      handle((_req, res, params) => {
        const uuid = params.uuid as string;
        if (!/^([0-9a-fA-F]{16})?[0-9a-fA-F]{64}$/.test(uuid)) throw new Refusal(400, 'UUID must be a 64-character hexadecimal string');
        if (uuid.length === 80 && uuid.slice(0, 16).toLowerCase() !== this.treeHex) throw new Refusal(404, `tree ${uuid.slice(0, 16)} is not a shard of this log`);
        const index = this.byLeaf.get(uuid.slice(-64).toLowerCase());
        if (index === undefined) throw new Refusal(404, `no entry with UUID ${uuid}`);
        sendJson(res, 200, this.entry(index));
      }),
    );

    service.route('GET', '/api/v1/log', (_req, res) =>
      sendJson(res, 200, {
        inactiveShards: [],
        rootHash: this.tree.root().toString('hex'),
        signedTreeHead: this.checkpoint(),
        treeID: this.options.material.rekor.treeId,
        treeSize: this.size,
      }),
    );

    service.route('GET', '/api/v1/log/publicKey', (_req, res) => {
      const pem = this.options.material.rekor.publicKey.export({ format: 'pem', type: 'spki' }).toString();
      res.writeHead(200, { 'content-type': 'application/x-pem-file', 'content-length': Buffer.byteLength(pem) });
      res.end(pem);
    });
  }
}
