import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '@mcp-release/manifest';
import { startGithub, type GithubLab } from './github/index.js';
import type { LabService } from './harness.js';
import { OidcService, type GithubClaims } from './oidc.js';
import { startRegistry, type RegistryLab, type TrustedPublisher } from './registry/index.js';
import { startSigstore, type SigstoreLab } from './sigstore/index.js';

/** The issuer of GitHub Actions' ID tokens; lab tokens carry it too. */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

export interface LabOptions {
  /** `iss` of the lab's tokens; GitHub's by default, so verification pins the same issuer as for real releases. */
  issuer?: string;
  /** Keeps keys, the registry storage, releases and the log across restarts. */
  stateDir?: string;
  /** Claims of the tokens the OIDC service issues (the workflow the lab plays). */
  claims?: Partial<GithubClaims>;
  trustedPublishers: TrustedPublisher[];
  /** Serve the GitHub API over TLS with the lab CA (needed by gh). Default true. */
  githubTls?: boolean;
  immutableReleases?: boolean;
  /**
   * Serve this local repository as owner/repo over git's smart HTTP on the GitHub stand-in: its
   * `ref` (default HEAD) becomes `branch` (default `main`), the default branch. Re-seeded (forced)
   * on every start. The env then carries MCP_RELEASE_GIT_REMOTE.
   */
  seedRepository?: { owner: string; repo: string; path: string; branch?: string; ref?: string };
}

export interface LabUrls {
  oidc: string;
  fulcio: string;
  rekor: string;
  tsa: string;
  tufMirror: string;
  registry: string;
  github: string;
  /** The clone URL of the seeded repository, when one was seeded. */
  gitRemote?: string;
}

export interface Lab {
  urls: LabUrls;
  /** The environment a release run needs: token service, registry, GitHub API, trust root. */
  env: Record<string, string>;
  trustedRootPath: string;
  oidc: OidcService;
  sigstore: SigstoreLab;
  registry: RegistryLab;
  github: GithubLab;
  /** Every service, for chaos by name. */
  services: Record<string, { chaos: LabService['chaos'] }>;
  stop(): Promise<void>;
}

/**
 * Starts the whole outside world of a release on 127.0.0.1: GitHub's OIDC token service, Sigstore
 * (Fulcio, Rekor, a timestamp authority, a TUF mirror), the npm registry with trusted publishing,
 * and GitHub's Releases and git refs API with git repositories over smart HTTP. Ports are chosen
 * by the system.
 */
export async function startLab(options: LabOptions): Promise<Lab> {
  const ephemeral = options.stateDir ? undefined : await mkdtemp(path.join(tmpdir(), 'mcp-release-lab-'));
  const stateDir = options.stateDir ?? (ephemeral as string);
  await mkdir(stateDir, { recursive: true });
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    const oidc = new OidcService(options.claims, undefined, options.issuer ?? GITHUB_ACTIONS_ISSUER);
    await oidc.start(0, stateDir);
    started.push(oidc);
    const jwksUri = oidc.jwksUri;
    const sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri, stateDir });
    started.push(sigstore);
    const registry = await startRegistry({ oidcIssuer: oidc.issuer, jwksUri, trustedPublishers: options.trustedPublishers, stateDir });
    started.push(registry);
    const github = await startGithub({ stateDir, tls: options.githubTls ?? true, ...(options.immutableReleases ? { immutableReleases: true } : {}) });
    started.push(github);
    const seed = options.seedRepository;
    const seeded = seed ? await github.seedRepository(seed.owner, seed.repo, seed.path, { ...(seed.branch ? { branch: seed.branch } : {}), ...(seed.ref ? { ref: seed.ref } : {}) }) : undefined;

    const trustedRootPath = path.join(stateDir, 'trusted_root.json');
    await sigstore.writeTrustedRoot(trustedRootPath);
    const tufRootPath = path.join(stateDir, 'tuf-root.json');
    await sigstore.tufRootFile(tufRootPath);

    const urls: LabUrls = {
      oidc: oidc.service.url,
      fulcio: sigstore.urls.fulcio,
      rekor: sigstore.urls.rekor,
      tsa: sigstore.urls.tsa,
      tufMirror: sigstore.urls.tufMirror,
      registry: registry.url,
      github: github.url,
      ...(seeded ? { gitRemote: seeded.url } : {}),
    };
    const env: Record<string, string> = {
      GITHUB_ACTIONS: 'true',
      ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken,
      GITHUB_API_URL: github.url,
      GITHUB_TOKEN: github.token,
      NPM_CONFIG_REGISTRY: registry.url,
      MCP_RELEASE_NPM_REGISTRY: registry.url,
      NPM_CONFIG_PROVENANCE: 'false',
      MCP_RELEASE_FULCIO_URL: urls.fulcio,
      MCP_RELEASE_REKOR_URL: urls.rekor,
      MCP_RELEASE_TSA_URL: urls.tsa,
      MCP_RELEASE_TUF_MIRROR: urls.tufMirror,
      MCP_RELEASE_TUF_ROOT: tufRootPath,
      MCP_RELEASE_TRUSTED_ROOT: trustedRootPath,
      MCP_RELEASE_OIDC_ISSUER: oidc.issuer,
      ...(options.githubTls === false ? {} : Object.fromEntries(Object.entries(github.ghEnv()).filter((e): e is [string, string] => typeof e[1] === 'string'))),
      ...(github.caFile ? { NODE_EXTRA_CA_CERTS: github.caFile, GIT_SSL_CAINFO: github.caFile } : {}),
      ...(seeded ? { MCP_RELEASE_GIT_REMOTE: seeded.url } : {}),
    };
    const services: Lab['services'] = {
      oidc: oidc.service,
      fulcio: sigstore.fulcio,
      rekor: sigstore.rekor,
      tsa: sigstore.tsa,
      tuf: sigstore.tuf,
      registry,
      github: github.service,
    };
    return {
      urls,
      env,
      trustedRootPath,
      oidc,
      sigstore,
      registry,
      github,
      services,
      async stop() {
        for (const s of started.reverse()) await s.stop().catch(() => undefined);
        if (ephemeral) await rm(ephemeral, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    if (ephemeral) await rm(ephemeral, { recursive: true, force: true });
    throw err;
  }
}

/** `export NAME='value'` lines for a shell. */
export function exportLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, "'\\''")}'`)
    .join('\n');
}

export async function writeLabInfo(file: string, info: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(info, null, 2)}\n`);
}
