// Test support for the npm publish tests: the lab (token service, registry, Sigstore), real npm
// tarballs and release contexts that hold them.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create as createTar } from 'tar';
import { OidcService, startRegistry, startSigstore, type RegistryLab, type SigstoreLab, type TrustedPublisher } from '@mcp-release/lab';
import { exec, type ExecResult } from '@mcp-release/pipeline';
import { releaseContext, TEST_PLAN } from '../../../../../test/helpers/context.js';
import type { ReleaseContext } from '../../options.js';
import type { Policy } from '../../policy.js';
import { parsePackJson } from '../../build-npm.js';
import type { Packument, Timing } from './registry.js';

export const REPOSITORY = 'mcp-release/vmaf-mcp';

export interface PublishLab {
  oidc: OidcService;
  registry: RegistryLab;
  sigstore: SigstoreLab;
  work: string;
  bindings: TrustedPublisher[];
  /** A new package name with a trusted publisher (repository, release.yml, environment release) on the registry and in the policy. */
  bound(prefix: string, binding?: Partial<TrustedPublisher>): string;
  /** The environment of a publishing job: the lab's token service and registry, no npm token anywhere. */
  env(extra?: Record<string, string | undefined>): NodeJS.ProcessEnv;
  /** An empty npm user config (or one holding these lines). */
  npmrc(lines?: string[]): Promise<string>;
  /** One `npm pack` of tiny packages; `seed` changes a package's contents. */
  pack<T extends PackSpec[]>(...specs: T): Promise<{ [K in keyof T]: Packed }>;
  /** Publishes a package's first version with the admin token: the bootstrap trusted publishing cannot do. */
  bootstrap(name: string, version?: string): Promise<void>;
  packument(name: string): Promise<Packument | undefined>;
  npm(args: string[], env?: Record<string, string>): Promise<ExecResult>;
  stop(): Promise<void>;
}

export async function startPublishLab(): Promise<PublishLab> {
  const work = await mkdtemp(path.join(tmpdir(), 'mcp-release-publish-npm-'));
  await mkdir(path.join(work, 'home'), { recursive: true });
  const oidc = new OidcService({ sha: TEST_PLAN.commit });
  await oidc.start();
  const sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: oidc.jwksUri });
  const bindings: TrustedPublisher[] = [];
  const registry = await startRegistry({ oidcIssuer: oidc.issuer, jwksUri: oidc.jwksUri, trustedPublishers: bindings });
  let counter = 0;
  const scratch = async (prefix: string): Promise<string> => {
    const dir = path.join(work, `${prefix}-${++counter}`);
    await mkdir(dir, { recursive: true });
    return dir;
  };
  const npmrc = async (lines: string[] = []): Promise<string> => {
    const file = path.join(await scratch('npmrc'), '.npmrc');
    await writeFile(file, lines.length ? `${lines.join('\n')}\n` : '');
    return file;
  };
  const emptyrc = await npmrc();
  const baseEnv = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: path.join(work, 'home'),
    TMPDIR: tmpdir(),
    npm_config_userconfig: emptyrc,
    npm_config_cache: path.join(work, 'npm-cache'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  });
  const lab: PublishLab = {
    oidc,
    registry,
    sigstore,
    work,
    bindings,
    bound(prefix, binding = {}) {
      const name = `${prefix}-${++counter}`;
      bindings.push({ package: name, repository: REPOSITORY, workflow: 'release.yml', environment: 'release', ...binding });
      registry.setTrustedPublishers(bindings);
      return name;
    },
    env(extra = {}) {
      const env: NodeJS.ProcessEnv = {
        ...baseEnv(),
        GITHUB_ACTIONS: 'true',
        ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken,
        MCP_RELEASE_NPM_REGISTRY: registry.url,
        MCP_RELEASE_FULCIO_URL: sigstore.urls.fulcio,
        MCP_RELEASE_REKOR_URL: sigstore.urls.rekor,
        MCP_RELEASE_TSA_URL: sigstore.urls.tsa,
      };
      for (const [k, v] of Object.entries(extra)) {
        if (v === undefined) delete env[k];
        else env[k] = v;
      }
      return env;
    },
    npmrc,
    async pack<T extends PackSpec[]>(...specs: T): Promise<{ [K in keyof T]: Packed }> {
      const dirs: string[] = [];
      for (const { name, version, seed = 'one' } of specs) {
        const dir = await scratch('pkg');
        await writeFile(path.join(dir, 'package.json'), `${JSON.stringify({ name, version, description: 'publish-npm fixture', license: 'MIT', main: 'index.js' }, null, 2)}\n`);
        await writeFile(path.join(dir, 'index.js'), `module.exports = ${JSON.stringify(`${name}@${version} ${seed}`)};\n`);
        dirs.push(dir);
      }
      const out = await scratch('packed');
      const r = await exec('npm', ['pack', '--json', '--pack-destination', out, ...dirs], { cwd: work, env: baseEnv() });
      if (r.exitCode !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
      const packed = parsePackJson(r.stdout);
      if (new Set(packed.map((p) => p.filename)).size !== packed.length) throw new Error('two of the packages make the same tarball name: pack them one at a time');
      return specs.map((spec, i) => {
        const p = packed[i];
        if (p?.name !== spec.name || p.version !== spec.version) throw new Error(`npm pack printed ${p?.name}@${p?.version} for ${spec.name}@${spec.version}`);
        return { name: spec.name, version: spec.version, file: path.join(out, p.filename), integrity: p.integrity };
      }) as { [K in keyof T]: Packed };
    },
    async bootstrap(name, version = '0.0.1') {
      // What `npm publish` sends, made here in-process: the setup of a test, not what it tests.
      const stage = await scratch('bootstrap');
      await mkdir(path.join(stage, 'package'));
      const manifest = { name, version, description: 'bootstrap', license: 'MIT' };
      await writeFile(path.join(stage, 'package', 'package.json'), `${JSON.stringify(manifest)}\n`);
      const file = path.join(stage, 'package.tgz');
      await createTar({ gzip: true, file, cwd: stage, portable: true }, ['package']);
      const data = await readFile(file);
      const filename = `${name.replace(/^@[^/]+\//, '')}-${version}.tgz`;
      const doc = {
        _id: name,
        name,
        'dist-tags': { latest: version },
        versions: {
          [version]: {
            ...manifest,
            _id: `${name}@${version}`,
            dist: { integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`, shasum: createHash('sha1').update(data).digest('hex'), tarball: new URL(`${name}/-/${filename}`, registry.url).href },
          },
        },
        _attachments: { [filename]: { content_type: 'application/octet-stream', data: data.toString('base64'), length: data.length } },
        access: 'public',
      };
      const res = await fetch(new URL(name.replace('/', '%2f'), registry.url), { method: 'PUT', headers: { authorization: `Bearer ${registry.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(doc) });
      if (res.status !== 201) throw new Error(`bootstrap of ${name} failed: HTTP ${res.status} ${await res.text()}`);
    },
    async packument(name) {
      const res = await fetch(new URL(name.replace('/', '%2f'), registry.url), { headers: { accept: 'application/json' } });
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`GET ${name}: HTTP ${res.status}`);
      return (await res.json()) as Packument;
    },
    npm(args, env = {}) {
      return exec('npm', [...args, '--registry', registry.url, '--fetch-retries=0'], { cwd: work, env: { ...baseEnv(), ...env } });
    },
    async stop() {
      await registry.stop();
      await sigstore.stop();
      await oidc.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
  return lab;
}

export interface PackSpec {
  name: string;
  version: string;
  seed?: string;
}

export interface Packed {
  name: string;
  version: string;
  file: string;
  integrity: string;
}

export interface ReleasePackage {
  name: string;
  version: string;
  file: string;
}

/** A release context whose plan releases these packages, their tarballs recorded as build-npm would. */
export async function npmRelease(lab: PublishLab, packages: ReleasePackage[], options: { env?: NodeJS.ProcessEnv; npm?: NonNullable<Policy['publish']>['npm'] } = {}): Promise<ReleaseContext & { log: { lines: string[] } }> {
  const dir = await mkdtemp(path.join(lab.work, 'release-'));
  const policy: Policy = { version: 1, packages: [{ path: '.' }], trustedPublishers: lab.bindings, publish: { npm: { provenance: false, ...options.npm } } };
  const ctx = await releaseContext(dir, { policy }, { deps: { env: options.env ?? lab.env() } });
  ctx.manifest.plan.packages = packages.map((p) => ({ name: p.name, version: p.version, path: `packages/${p.name.replace(/^@|\//g, '')}` }));
  ctx.stepName = 'build-npm';
  for (const p of packages) {
    const base = path.basename(p.file);
    await copyFile(p.file, path.join(ctx.releaseDir, base));
    await ctx.addArtifact(base, 'npm-tarball', 'any', { name: p.name, version: p.version });
  }
  ctx.stepName = '';
  return ctx;
}

/** A clock that only moves when something sleeps, and a record of the sleeps. */
export function fakeTiming(): Timing & { slept: number[] } {
  let t = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    async sleep(ms) {
      slept.push(ms);
      t += ms;
    },
  };
}
