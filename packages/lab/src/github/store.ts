import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LabError } from '../errors.js';

/** One uploaded release asset. Its bytes live in `<dir>/assets/<id>`. */
export interface AssetRecord {
  id: number;
  name: string;
  label: string | null;
  content_type: string;
  size: number;
  /** `sha256:<hex>` of the bytes, as GitHub reports it. */
  digest: string;
  download_count: number;
  created_at: string;
  updated_at: string;
}

export interface ReleaseRecord {
  id: number;
  owner: string;
  repo: string;
  tag_name: string;
  target_commitish: string;
  name: string | null;
  body: string | null;
  draft: boolean;
  prerelease: boolean;
  /** Set when a release is published while the lab runs with immutable releases. */
  immutable: boolean;
  /** The `untagged-…` name GitHub uses in a draft's URLs instead of its tag. */
  untagged: string;
  make_latest: 'true' | 'false' | 'legacy';
  created_at: string;
  updated_at: string;
  published_at: string | null;
  assets: AssetRecord[];
}

/** A git reference, `refs/tags/v1.0.0` or `refs/heads/main`. */
export interface RefRecord {
  owner: string;
  repo: string;
  ref: string;
  sha: string;
}

/** An annotated tag object made through `POST /git/tags`. */
export interface TagRecord {
  owner: string;
  repo: string;
  sha: string;
  tag: string;
  message: string;
  object: { sha: string; type: string };
  tagger: { name: string; email: string; date: string };
}

/** A repository the stand-in serves over git; its refs and tags live in its bare repository. */
export interface RepositoryRecord {
  owner: string;
  repo: string;
  default_branch: string;
  created_at: string;
}

interface Data {
  version: 1;
  nextId: number;
  releases: ReleaseRecord[];
  refs: RefRecord[];
  tags: TagRecord[];
  /** Release id marked latest, by lowercased `owner/repo`. */
  latest: Record<string, number>;
  repositories: RepositoryRecord[];
}

export function repoKey(owner: string, repo: string): string {
  return `${owner}/${repo}`.toLowerCase();
}

export function sameRepo(a: { owner: string; repo: string }, owner: string, repo: string): boolean {
  return repoKey(a.owner, a.repo) === repoKey(owner, repo);
}

export function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The GitHub stand-in's state: release metadata, refs and tag objects in `state.json`, asset
 * bytes as files under `assets/`, bare git repositories under `repos/` (see repos.ts). Every
 * change is written before the request that made it is answered, through a temporary file and a
 * rename.
 */
export class Store {
  readonly dir: string;
  readonly assetsDir: string;
  private data: Data;
  private writing: Promise<void> = Promise.resolve();

  private constructor(dir: string, data: Data) {
    this.dir = dir;
    this.assetsDir = path.join(dir, 'assets');
    this.data = data;
  }

  static async open(dir: string): Promise<Store> {
    const file = path.join(dir, 'state.json');
    let data: Data = { version: 1, nextId: 1001, releases: [], refs: [], tags: [], latest: {}, repositories: [] };
    try {
      await mkdir(path.join(dir, 'assets'), { recursive: true });
      let text: string | undefined;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (text !== undefined) {
        const parsed = JSON.parse(text) as Data;
        if (parsed.version !== 1 || !Array.isArray(parsed.releases)) throw new Error(`unknown state format in ${file}`);
        data = { ...data, ...parsed };
      }
      // uploads cut off by a stop or crash leave partial files behind
      for (const name of await readdir(path.join(dir, 'assets'))) {
        if (name.endsWith('.part')) await rm(path.join(dir, 'assets', name), { force: true });
      }
    } catch (err) {
      throw new LabError('LAB_GITHUB_STATE', `could not load the GitHub stand-in's state from ${dir}`, { cause: err, hint: 'remove that folder to start from an empty state, or give another stateDir' });
    }
    return new Store(dir, data);
  }

  get releases(): ReleaseRecord[] {
    return this.data.releases;
  }

  get refs(): RefRecord[] {
    return this.data.refs;
  }

  get tags(): TagRecord[] {
    return this.data.tags;
  }

  get latest(): Record<string, number> {
    return this.data.latest;
  }

  get repositories(): RepositoryRecord[] {
    return this.data.repositories;
  }

  nextId(): number {
    const id = this.data.nextId;
    this.data.nextId += 1;
    return id;
  }

  untaggedName(): string {
    return `untagged-${randomBytes(10).toString('hex')}`;
  }

  assetFile(id: number): string {
    return path.join(this.assetsDir, String(id));
  }

  /** A fresh path for an upload in progress, renamed to `assetFile(id)` once complete. */
  partFile(id: number): string {
    return path.join(this.assetsDir, `${id}.${randomBytes(4).toString('hex')}.part`);
  }

  /** Writes the current state; calls are serialised, and each waits for its own write. */
  save(): Promise<void> {
    const text = `${JSON.stringify(this.data, null, 2)}\n`;
    const file = path.join(this.dir, 'state.json');
    const run = async (): Promise<void> => {
      const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, file);
    };
    const next = this.writing.then(run, run);
    this.writing = next.catch(() => undefined);
    return next.catch((err: unknown) => {
      throw new LabError('LAB_GITHUB_STATE', `could not write the GitHub stand-in's state to ${file}`, { cause: err, hint: 'check that the state folder is writable and the disk is not full' });
    });
  }

  async flush(): Promise<void> {
    await this.writing;
  }
}
