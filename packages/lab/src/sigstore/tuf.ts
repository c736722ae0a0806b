import { createHash, sign } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { json } from '@sigstore/core';
import { Key, Metadata, MetaFile, Root, Signature, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';
import { LabError } from '../errors.js';
import { sendJson, type LabService } from '../harness.js';
import type { Material, SigningKey, TufRole } from './pki.js';

/**
 * A TUF repository laid out as sigstore's (consistent snapshots: `N.root.json`, `timestamp.json`,
 * `N.snapshot.json`, `N.targets.json`, `targets/<sha256>.<name>`), built and signed with
 * @tufjs/models. Its targets are the lab's trusted_root.json and signing config. The metadata is
 * kept in the state folder; when a target changes or metadata nears expiry, new versions of
 * targets, snapshot and timestamp are published (root stays at version 1).
 */

const SPEC_VERSION = '1.0.31';
const DAY_MS = 24 * 3600 * 1000;
const ROOT_LIFETIME_MS = 10 * 365 * DAY_MS;
const LIFETIME_MS = 365 * DAY_MS;
const RENEW_BEFORE_MS = 30 * DAY_MS;

interface StoredRepository {
  root: string;
  targets: string;
  snapshot: string;
  timestamp: string;
}

const tufTime = (d: Date): string => `${d.toISOString().slice(0, 19)}Z`;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function tufKey(key: SigningKey): Key {
  const keyVal = { public: key.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
  const keyID = createHash('sha256').update(json.canonicalize({ keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: keyVal })).digest('hex');
  return new Key({ keyID, keyType: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyVal });
}

type AnySigned = Root | Targets | Snapshot | Timestamp;

function signed<T extends AnySigned>(body: T, key: SigningKey): string {
  const md = new Metadata<T>(body);
  const { keyID } = tufKey(key);
  md.sign((data) => new Signature({ keyID, sig: sign('sha256', data, key.privateKey).toString('hex') }));
  return JSON.stringify(md.toJSON());
}

export class TufRepository {
  private repo: StoredRepository | undefined;
  private files = new Map<string, Buffer>();

  constructor(private readonly options: { material: Material; stateDir?: string; clock: () => Date }) {}

  private get file(): string | undefined {
    return this.options.stateDir ? path.join(this.options.stateDir, 'sigstore', 'tuf-repository.json') : undefined;
  }

  /** The first root.json: what a client must start from. */
  get initialRoot(): Buffer {
    if (!this.repo) throw new LabError('LAB_TUF_NOT_READY', 'the TUF repository has not been published yet', { hint: 'await startSigstore() before asking for the TUF root' });
    return Buffer.from(this.repo.root);
  }

  /** Publishes these targets, reusing the stored metadata when nothing changed. */
  async publish(targets: Record<string, Buffer>): Promise<void> {
    const { material } = this.options;
    const now = this.options.clock();
    let stored: StoredRepository | undefined;
    if (this.file) {
      try {
        stored = JSON.parse(await readFile(this.file, 'utf8')) as StoredRepository;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new LabError('LAB_TUF_STATE_CORRUPT', `cannot read ${this.file}`, { cause: err, hint: `delete ${this.file}; clients must then start again from the new root file` });
        }
      }
    }
    const keys = Object.fromEntries((['root', 'targets', 'snapshot', 'timestamp'] as TufRole[]).map((r) => [r, tufKey(material.tuf[r])])) as Record<TufRole, Key>;
    if (stored) {
      const roles = (JSON.parse(stored.root) as { signed: { roles: Record<string, { keyids: string[] }> } }).signed.roles;
      const mismatch = (Object.keys(keys) as TufRole[]).filter((r) => !roles[r]?.keyids.includes(keys[r].keyID));
      if (mismatch.length) {
        throw new LabError('LAB_TUF_STATE_CORRUPT', `the stored TUF root does not list the lab's current ${mismatch.join(', ')} key(s)`, {
          hint: `the key file in the state folder was replaced; delete ${this.file} as well, then give clients the new root file`,
        });
      }
    }
    let root = stored?.root;
    if (!root) {
      const body = new Root({ version: 1, specVersion: SPEC_VERSION, expires: tufTime(new Date(now.getTime() + ROOT_LIFETIME_MS)), consistentSnapshot: true });
      for (const [role, key] of Object.entries(keys)) body.addKey(key, role);
      root = signed(body, material.tuf.root);
    }

    const wanted = Object.fromEntries(Object.entries(targets).map(([name, data]) => [name, { length: data.length, hashes: { sha256: sha256(data) } }]));
    let current: { targets: Targets; snapshot: Snapshot; timestamp: Timestamp } | undefined;
    if (stored) {
      current = {
        targets: Targets.fromJSON((JSON.parse(stored.targets) as { signed: Record<string, never> }).signed),
        snapshot: Snapshot.fromJSON((JSON.parse(stored.snapshot) as { signed: Record<string, never> }).signed),
        timestamp: Timestamp.fromJSON((JSON.parse(stored.timestamp) as { signed: Record<string, never> }).signed),
      };
    }
    const same =
      current !== undefined &&
      JSON.stringify(Object.fromEntries(Object.entries(current.targets.targets).map(([n, t]) => [n, { length: t.length, hashes: t.hashes }]))) === JSON.stringify(wanted);
    const fresh = current !== undefined && [current.targets, current.snapshot, current.timestamp].every((m) => new Date(m.expires).getTime() - now.getTime() > RENEW_BEFORE_MS);

    let repo: StoredRepository;
    if (stored && same && fresh) {
      repo = { ...stored, root };
    } else {
      const expires = tufTime(new Date(now.getTime() + LIFETIME_MS));
      const targetsVersion = (current?.targets.version ?? 0) + 1;
      const snapshotVersion = (current?.snapshot.version ?? 0) + 1;
      const targetsText = signed(
        new Targets({
          version: targetsVersion,
          specVersion: SPEC_VERSION,
          expires,
          targets: Object.fromEntries(Object.entries(wanted).map(([name, info]) => [name, new TargetFile({ path: name, ...info })])),
        }),
        material.tuf.targets,
      );
      const snapshotText = signed(new Snapshot({ version: snapshotVersion, specVersion: SPEC_VERSION, expires, meta: { 'targets.json': new MetaFile({ version: targetsVersion }) } }), material.tuf.snapshot);
      const snapshotBytes = Buffer.from(snapshotText);
      const timestampText = signed(
        new Timestamp({
          version: (current?.timestamp.version ?? 0) + 1,
          specVersion: SPEC_VERSION,
          expires,
          snapshotMeta: new MetaFile({ version: snapshotVersion, length: snapshotBytes.length, hashes: { sha256: sha256(snapshotBytes) } }),
        }),
        material.tuf.timestamp,
      );
      repo = { root, targets: targetsText, snapshot: snapshotText, timestamp: timestampText };
    }
    if (this.file && JSON.stringify(repo) !== JSON.stringify(stored)) {
      await mkdir(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(repo), { mode: 0o600 });
      await rename(tmp, this.file);
    }
    this.repo = repo;
    this.files = this.layout(repo, targets);
  }

  private layout(repo: StoredRepository, targets: Record<string, Buffer>): Map<string, Buffer> {
    const version = (text: string): number => (JSON.parse(text) as { signed: { version: number } }).signed.version;
    const files = new Map<string, Buffer>();
    files.set(`${version(repo.root)}.root.json`, Buffer.from(repo.root));
    files.set('root.json', Buffer.from(repo.root));
    files.set('timestamp.json', Buffer.from(repo.timestamp));
    files.set(`${version(repo.snapshot)}.snapshot.json`, Buffer.from(repo.snapshot));
    files.set('snapshot.json', Buffer.from(repo.snapshot));
    files.set(`${version(repo.targets)}.targets.json`, Buffer.from(repo.targets));
    files.set('targets.json', Buffer.from(repo.targets));
    for (const [name, data] of Object.entries(targets)) {
      files.set(`targets/${sha256(data)}.${name}`, data);
      files.set(`targets/${name}`, data);
    }
    return files;
  }

  routes(service: LabService): void {
    const serve = (file: string, res: Parameters<Parameters<LabService['route']>[2]>[1]): void => {
      const data = this.files.get(file);
      if (!data) {
        sendJson(res, 404, { message: `${file} is not in the lab's TUF repository` });
        return;
      }
      res.writeHead(200, { 'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'content-length': data.length });
      res.end(data);
    };
    service.route('GET', '/:file', (_req, res, params) => serve(params.file as string, res));
    service.route('GET', '/targets/:file', (_req, res, params) => serve(`targets/${params.file as string}`, res));
  }
}
