import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LabError } from '../errors.js';
import { LabService } from '../harness.js';
import { persisted } from '../state.js';
import { registerGithubApi } from './api.js';
import { Repositories, type RepositoryState } from './repos.js';
import { registerGitHttp } from './smart-http.js';
import { repoKey, Store, type AssetRecord, type RefRecord, type ReleaseRecord, type RepositoryRecord, type TagRecord } from './store.js';
import { createGithubTls, type GithubTlsMaterial } from './tls.js';

export type { AssetRecord as GithubAssetRecord, RefRecord as GithubRefRecord, ReleaseRecord as GithubReleaseRecord, TagRecord as GithubTagRecord } from './store.js';
export type { RepositoryState as GithubRepositoryState, RepoTagState as GithubRepositoryTagState } from './repos.js';
export type { GithubTlsMaterial } from './tls.js';

export interface GithubLabOptions {
  /** Keep releases, assets, refs, git repositories and the TLS certificates here across restarts. Default: a temporary folder removed by stop(). */
  stateDir?: string;
  /** Port on 127.0.0.1; default 0 (any free port). */
  port?: number;
  /** Serve HTTPS with a lab CA, advertised as https://localhost:PORT (needed by `gh`). */
  tls?: boolean;
  /** The token callers must present; default: random. */
  token?: string;
  /** Published releases refuse asset changes and tag moves, as GitHub's immutable releases do. */
  immutableReleases?: boolean;
}

/** An asset in the final state, with the file that holds its bytes. */
export interface GithubAssetState extends AssetRecord {
  path: string;
}

export interface GithubReleaseState extends Omit<ReleaseRecord, 'assets'> {
  assets: GithubAssetState[];
}

export interface GithubState {
  releases: GithubReleaseState[];
  /** Every ref: those made through the API, and those of each git repository. */
  refs: RefRecord[];
  /** Annotated tag objects: those made through the API, and those the tags of each git repository point at. */
  tags: TagRecord[];
  /** The git repositories (seeded or created), with their branches and tags. */
  repositories: RepositoryState[];
}

export interface SeedRepositoryOptions {
  /** The branch the local commit becomes, and the default branch (HEAD). Default: `main`. */
  branch?: string;
  /** What to take from the local repository. Default: `HEAD`. */
  ref?: string;
  /** Copy the local repository's tags too. Default: false. */
  tags?: boolean;
}

/** A git repository the stand-in serves. */
export interface GithubRepositoryInfo {
  owner: string;
  repo: string;
  /** Its clone URL: `<url>/<owner>/<repo>.git`. */
  url: string;
  /** The bare repository on disk. */
  path: string;
  defaultBranch: string;
  /** The commit the default branch points at; null in an empty repository. */
  head: string | null;
}

export interface GithubLab {
  /** REST base URL, for octokit's `baseUrl`. The same API is served under `${url}/api/v3`. */
  url: string;
  /** The underlying service: chaos rules (`service.chaos`) and the request log (`service.log`). */
  service: LabService;
  token: string;
  /** Path of the lab CA's PEM when tls is on: for SSL_CERT_FILE (gh) or NODE_EXTRA_CA_CERTS (node). */
  caFile?: string;
  /**
   * The environment `gh` needs to talk to this stand-in. It works as the child's whole env (no PATH
   * or HOME needed); spread over process.env it works too, as long as that carries no other GH_* settings.
   */
  ghEnv(): NodeJS.ProcessEnv;
  /** The `-R` value for gh: `localhost:PORT/owner/repo`. */
  ghRepo(owner: string, repo: string): string;
  /**
   * Creates the git repository owner/repo from a local repository, or refreshes it: `ref` becomes
   * `refs/heads/<branch>` (forced) and HEAD names that branch. From then on the repository's refs
   * and tags are its bare repository's, through git and the REST API alike.
   */
  seedRepository(owner: string, repo: string, fromPath: string, options?: SeedRepositoryOptions): Promise<GithubRepositoryInfo>;
  /** Creates an empty git repository (HEAD on `branch`, default `main`); an existing one is left as it is. */
  createRepository(owner: string, repo: string, options?: { branch?: string }): Promise<GithubRepositoryInfo>;
  /** The smart-HTTP clone URL of owner/repo: `<url>/<owner>/<repo>.git`. */
  gitUrl(owner: string, repo: string): string;
  /** A copy of the current releases, refs, tag objects and git repositories. */
  state(): GithubState;
  stop(): Promise<void>;
}

/**
 * Starts the lab's stand-in for the part of GitHub that a release uses: the REST API, and git
 * repositories over smart HTTP (`gitUrl`) whose refs and tags the REST API reads and writes.
 */
export async function startGithub(options: GithubLabOptions = {}): Promise<GithubLab> {
  const temporary = !options.stateDir;
  const dir = options.stateDir ? path.join(path.resolve(options.stateDir), 'github') : await mkdtemp(path.join(tmpdir(), 'release-lab-github-'));
  const token = options.token ?? `ghlab_${randomBytes(20).toString('hex')}`;
  if (!/^[\x21-\x7e]+$/.test(token)) throw new LabError('LAB_GITHUB_TOKEN', 'the GitHub stand-in token must be printable ASCII without spaces', { hint: 'omit token to get a random one' });

  let service: LabService | undefined;
  let repos: Repositories | undefined;
  try {
    const store = await Store.open(dir);
    repos = await Repositories.open(dir, store);
    const git = repos;
    let tls: GithubTlsMaterial | undefined;
    let caFile: string | undefined;
    if (options.tls) {
      tls = await persisted(options.stateDir ? path.resolve(options.stateDir) : undefined, 'github-tls', createGithubTls);
      caFile = path.join(dir, 'ca.pem');
      await writeFile(caFile, tls.caCert);
    }
    const ghConfigDir = path.join(dir, 'gh-config');
    await mkdir(ghConfigDir, { recursive: true, mode: 0o700 });

    const svc = new LabService({ name: 'github', ...(tls ? { tls: { key: tls.key, cert: tls.cert } } : {}) });
    service = svc;
    // the git routes come first: the API ends with a catch-all
    registerGitHttp({ service: svc, repos: git, token });
    registerGithubApi({ service: svc, store, repos: git, token, immutableReleases: Boolean(options.immutableReleases) });
    try {
      await svc.start(options.port ?? 0);
    } catch (err) {
      throw new LabError('LAB_GITHUB_START', `the GitHub stand-in could not listen on 127.0.0.1:${options.port ?? 0}`, { cause: err, hint: 'pick another port, or port 0 for any free one' });
    }
    if (tls) svc.setUrl(`https://localhost:${svc.port}`);
    const host = `localhost:${svc.port}`;
    const gitUrl = (owner: string, repo: string): string => `${svc.url}/${owner}/${repo}.git`;
    const info = (r: RepositoryRecord): GithubRepositoryInfo => {
      const snap = git.snapshot().find((x) => repoKey(x.state.owner, x.state.repo) === repoKey(r.owner, r.repo));
      const defaultBranch = snap?.state.defaultBranch ?? r.default_branch;
      return { owner: r.owner, repo: r.repo, url: gitUrl(r.owner, r.repo), path: git.dirOf(r.owner, r.repo), defaultBranch, head: snap?.state.branches.find((b) => b.name === defaultBranch)?.sha ?? null };
    };

    let stopped = false;
    return {
      url: svc.url,
      service: svc,
      token,
      ...(caFile ? { caFile } : {}),
      ghEnv() {
        if (!caFile) {
          throw new LabError('LAB_GITHUB_NO_TLS', 'gh only talks HTTPS to a host, and this GitHub stand-in runs without TLS', { hint: 'start it with startGithub({ tls: true })' });
        }
        return {
          GH_HOST: host,
          GH_TOKEN: token,
          GH_ENTERPRISE_TOKEN: token,
          SSL_CERT_FILE: caFile,
          GH_CONFIG_DIR: ghConfigDir,
          GH_PROMPT_DISABLED: '1',
          GH_NO_UPDATE_NOTIFIER: '1',
          NO_COLOR: '1',
        };
      },
      ghRepo(owner: string, repo: string) {
        return `${host}/${owner}/${repo}`;
      },
      async seedRepository(owner, repo, fromPath, seed = {}) {
        return info(await git.seed(owner, repo, fromPath, { branch: seed.branch ?? 'main', ref: seed.ref ?? 'HEAD', tags: Boolean(seed.tags) }));
      },
      async createRepository(owner, repo, create = {}) {
        return info(await git.create(owner, repo, create.branch ?? 'main'));
      },
      gitUrl,
      state() {
        const snaps = git.snapshot();
        // a repository with git keeps its refs and tags there only
        const backed = new Set(snaps.map((x) => repoKey(x.state.owner, x.state.repo)));
        const own = <T extends { owner: string; repo: string }>(items: T[]): T[] => items.filter((x) => !backed.has(repoKey(x.owner, x.repo)));
        const copy = structuredClone({
          releases: store.releases,
          refs: [...own(store.refs), ...snaps.flatMap((x) => x.refs)],
          tags: [...own(store.tags), ...snaps.flatMap((x) => x.tags)],
          repositories: snaps.map((x) => x.state),
        });
        return {
          releases: copy.releases.map((r) => ({ ...r, assets: r.assets.map((a) => ({ ...a, path: store.assetFile(a.id) })) })),
          refs: copy.refs,
          tags: copy.tags,
          repositories: copy.repositories,
        };
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await svc.stop();
        await git.close();
        await store.flush();
        if (temporary) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (service?.url) await service.stop().catch(() => undefined);
    await repos?.close();
    if (temporary) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
