import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Ajv from 'ajv';
import { PackageURL } from 'packageurl-js';
import semver from 'semver';
import { describeSchemaErrors, type PlannedPackage } from '@mcp-release/manifest';
import { StepError } from '../errors.js';
import { spdxLicense } from './license.js';

/** Workspace packages esbuild bundles into the published file: never installed, so never dependencies. */
export const BUNDLED_WORKSPACE_SCOPE = '@mcp-release/';

export type DigestAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface SbomDigest {
  algorithm: DigestAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

/** One npm package as a consumer's `npm install` of the released tarball installs it. */
export interface SbomNpmPackage {
  /** `name@version`: one entry however many places the lockfile installs it. */
  id: string;
  name: string;
  version: string;
  purl: string;
  /** A valid SPDX expression; undefined means NOASSERTION. */
  license: string | undefined;
  /** From the lockfile's `integrity` (none for workspace packages). */
  digests: SbomDigest[];
  /** Where the lockfile says the package is downloaded from. */
  resolved?: string;
  /** Ids of the packages it depends on (dependencies, optional and peer dependencies the lockfile holds), sorted. */
  dependsOn: string[];
  /** The workspace folder, for a package of this repository. */
  workspace?: string;
}

export interface SbomNpmInventory {
  /** The lockfile the tree was read from, relative to the repository root. */
  lockfile: string;
  /** Ids of the planned packages, in plan order. */
  roots: string[];
  /** Every package, sorted by id. */
  packages: SbomNpmPackage[];
}

interface LockEntry {
  name?: string;
  version?: string;
  resolved?: string;
  integrity?: string;
  license?: unknown;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

interface Lockfile {
  lockfileVersion?: number;
  packages?: Record<string, LockEntry>;
}

interface PackageJson {
  name?: string;
  version?: string;
  license?: unknown;
  overrides?: unknown;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const DEPENDENCY_MAP = { type: 'object', additionalProperties: { type: 'string' } } as const;
/** The lockfile entries' fields that the walk reads, with the types npm writes them with. */
const validateLockPackages = new Ajv({ allErrors: true, strict: false }).compile<Lockfile & { packages: Record<string, LockEntry> }>({
  type: 'object',
  properties: {
    packages: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          resolved: { type: 'string' },
          integrity: { type: 'string' },
          link: { type: 'boolean' },
          dependencies: DEPENDENCY_MAP,
          optionalDependencies: DEPENDENCY_MAP,
          peerDependencies: DEPENDENCY_MAP,
          peerDependenciesMeta: { type: 'object', additionalProperties: { type: 'object', properties: { optional: { type: 'boolean' } } } },
        },
      },
    },
  },
});

const LOCK_HINT = 'run `npm install` at the repository root to bring package-lock.json up to date with every package.json, commit it, and run the release again';

export function npmId(name: string, version: string): string {
  return `${name}@${version}`;
}

export function npmPurl(name: string, version: string): string {
  const slash = name.startsWith('@') ? name.indexOf('/') : -1;
  const namespace = slash > 0 ? name.slice(0, slash) : undefined;
  return new PackageURL('npm', namespace, slash > 0 ? name.slice(slash + 1) : name, version, undefined, undefined).toString();
}

const DIGEST_BYTES: Record<DigestAlgorithm, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/**
 * `sha512-<base64> sha1-<base64>` → hex digests, strongest first. A digest of the wrong length is
 * returned in `damaged`, never recorded.
 */
export function parseIntegrity(integrity: string | undefined): { digests: SbomDigest[]; damaged: string[] } {
  const out: SbomDigest[] = [];
  const damaged: string[] = [];
  for (const part of (integrity ?? '').split(/\s+/).filter(Boolean)) {
    const m = /^(sha1|sha256|sha384|sha512)-([A-Za-z0-9+/=]+)(\?.*)?$/.exec(part);
    if (!m) continue;
    const algorithm = m[1] as DigestAlgorithm;
    const bytes = Buffer.from(m[2] as string, 'base64');
    if (bytes.length !== DIGEST_BYTES[algorithm]) damaged.push(part);
    else if (!out.some((d) => d.algorithm === algorithm)) out.push({ algorithm, hex: bytes.toString('hex') });
  }
  const rank: DigestAlgorithm[] = ['sha512', 'sha384', 'sha256', 'sha1'];
  return { digests: out.sort((a, b) => rank.indexOf(a.algorithm) - rank.indexOf(b.algorithm)), damaged };
}

/** A download URL fit for a public document: any user name or token in it is removed. */
export function withoutCredentials(resolved: string): string {
  if (!/^[a-z+]+:\/\//i.test(resolved)) return resolved;
  try {
    const url = new URL(resolved);
    if (!url.username && !url.password) return resolved;
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return resolved;
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

/** The lockfile npm would install from: npm-shrinkwrap.json wins over package-lock.json. */
export async function readLockfile(repoRoot: string): Promise<{ name: string; packages: Record<string, LockEntry> }> {
  for (const name of ['npm-shrinkwrap.json', 'package-lock.json']) {
    let lock: Lockfile | undefined;
    try {
      lock = await readJson<Lockfile>(path.join(repoRoot, name));
    } catch (err) {
      throw new StepError('SBOM_LOCKFILE_INVALID', `${name} in ${repoRoot} is not valid JSON: ${(err as Error).message}`, {
        cause: err,
        hint: `restore ${name} from git, or regenerate it with \`npm install\` at the repository root`,
      });
    }
    if (lock === undefined) continue;
    if (!lock || typeof lock !== 'object' || Array.isArray(lock)) {
      throw new StepError('SBOM_LOCKFILE_INVALID', `${name} in ${repoRoot} is JSON, but not a lockfile (not an object)`, {
        hint: `restore ${name} from git, or regenerate it with \`npm install\` at the repository root`,
      });
    }
    if (!lock.packages || typeof lock.packages !== 'object' || (lock.lockfileVersion ?? 1) < 2) {
      throw new StepError('SBOM_LOCKFILE_TOO_OLD', `${name} has lockfileVersion ${String(lock.lockfileVersion ?? 1)}, which has no "packages" map to read the installed tree from`, {
        hint: `run \`npm install\` with npm 7 or newer at the repository root to rewrite ${name} as lockfileVersion 3, and commit it`,
      });
    }
    // the fields the walk reads must have the types npm writes: a damaged entry is named, never a crash
    if (!validateLockPackages(lock)) {
      const details = describeSchemaErrors(validateLockPackages.errors);
      throw new StepError('SBOM_LOCKFILE_INVALID', `${name} is damaged: ${details[0] ?? 'its packages map is not a map of entries'}`, {
        details: details.slice(0, 30),
        hint: `restore ${name} from git, or delete the damaged entries and run \`npm install\` at the repository root to write them again`,
      });
    }
    return { name, packages: lock.packages };
  }
  throw new StepError('SBOM_LOCKFILE_MISSING', `there is no package-lock.json in ${repoRoot}, so the npm dependencies of the release cannot be listed`, {
    hint: 'run `npm install` at the repository root to write package-lock.json and commit it: the SBOM lists dependencies exactly as the lockfile pins them',
  });
}

/** The parent folder node looks in next: `a/node_modules/b` → `a`, `packages/x` → `packages`. */
function parentFolder(dir: string): string {
  let d = path.posix.dirname(dir);
  while (d !== '.' && path.posix.basename(d) === 'node_modules') d = path.posix.dirname(d);
  return d === '.' ? '' : d;
}

/** Node's resolution over the lockfile: the nearest `node_modules/<name>` up from `from`. */
export function resolveInLockfile(packages: Record<string, unknown>, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const key = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (Object.hasOwn(packages, key)) return key;
    if (!dir) return undefined;
    dir = parentFolder(dir);
  }
}

/** The semver range of a dependency spec, or undefined when it is not a registry range (git, file, tag…). */
function rangeOf(spec: string): string | undefined {
  const alias = /^npm:(?:@[^/@]+\/)?[^@]+(?:@(.*))?$/.exec(spec);
  const range = alias ? (alias[1] ?? '*') : spec;
  return semver.validRange(range, { loose: true }) === null ? undefined : range;
}

function workspaceFolder(p: string): string {
  const n = path.posix.normalize(p.split(path.sep).join('/')).replace(/\/+$/, '');
  return n === '.' ? '' : n.replace(/^\.\//, '');
}

type EdgeKind = 'prod' | 'optional' | 'peer';

/** Names the root package.json `overrides` pin (at any depth): their versions may leave the declared range. */
function overriddenNames(overrides: unknown, out = new Set<string>()): Set<string> {
  if (!overrides || typeof overrides !== 'object' || Array.isArray(overrides)) return out;
  for (const [key, value] of Object.entries(overrides as Record<string, unknown>)) {
    if (key !== '.') out.add(key.replace(/^(@?[^@]+)@.*$/, '$1'));
    overriddenNames(value, out);
  }
  return out;
}

function edgesOf(e: LockEntry | PackageJson): Array<{ name: string; spec: string; kind: EdgeKind }> {
  const out: Array<{ name: string; spec: string; kind: EdgeKind }> = [];
  for (const [name, spec] of Object.entries(e.dependencies ?? {})) out.push({ name, spec, kind: 'prod' });
  for (const [name, spec] of Object.entries(e.optionalDependencies ?? {})) if (!out.some((d) => d.name === name)) out.push({ name, spec, kind: 'optional' });
  // npm 7 and newer install peer dependencies too, unless they are marked optional.
  for (const [name, spec] of Object.entries(e.peerDependencies ?? {})) {
    if (!e.peerDependenciesMeta?.[name]?.optional && !out.some((d) => d.name === name)) out.push({ name, spec, kind: 'peer' });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface CollectNpmOptions {
  repoRoot: string;
  packages: PlannedPackage[];
  /** Called once per package whose license is recorded as NOASSERTION. */
  warn: (message: string) => void;
}

/**
 * Lists each planned package and every package its tarball installs, from the lockfile: from the
 * workspace's declared dependencies (and optional and peer dependencies), each name is resolved
 * as node resolves it (the nearest `node_modules/<name>` up the path), links are followed into
 * the workspace folder they point at, and dev dependencies are never followed. Workspace packages
 * under @mcp-release/ are bundled into the published file and are not dependencies. A lockfile that
 * disagrees with a package.json (a declared dependency missing, a version outside its range) is
 * refused with the fix.
 */
export async function collectNpmDependencies(options: CollectNpmOptions): Promise<SbomNpmInventory> {
  const lock = await readLockfile(options.repoRoot);
  const pkgs = lock.packages;
  const rootManifest = await readJson<PackageJson>(path.join(options.repoRoot, 'package.json')).catch(() => undefined);
  const overridden = overriddenNames(rootManifest?.overrides);
  const problems: string[] = [];
  const damaged: string[] = [];
  const nodes = new Map<string, SbomNpmPackage & { deps: Set<string> }>();
  const licenseOf = new Map<string, unknown>();
  const locationOf = new Map<string, string>();
  const walked = new Set<string>();
  const queue: Array<{ location: string; id: string; edges: ReturnType<typeof edgesOf> }> = [];
  const roots: string[] = [];

  const node = (name: string, version: string, entry: LockEntry | undefined, location: string, workspace?: string): SbomNpmPackage & { deps: Set<string> } => {
    const id = npmId(name, version);
    let n = nodes.get(id);
    if (!n) {
      const integrity = parseIntegrity(entry?.integrity);
      if (integrity.damaged.length) damaged.push(`${location} (${id}) has the integrity ${integrity.damaged.join(' ')}, which is not a whole digest`);
      n = {
        id,
        name,
        version,
        purl: npmPurl(name, version),
        license: undefined,
        digests: integrity.digests,
        ...(entry?.resolved && !entry.link ? { resolved: withoutCredentials(entry.resolved) } : {}),
        dependsOn: [],
        ...(workspace !== undefined ? { workspace } : {}),
        deps: new Set(),
      };
      nodes.set(id, n);
    }
    if (!licenseOf.has(id) && entry?.license !== undefined) licenseOf.set(id, entry.license);
    if (!locationOf.has(id)) locationOf.set(id, location);
    return n;
  };

  for (const planned of options.packages) {
    const folder = workspaceFolder(planned.path);
    const label = `${planned.name} (${planned.path})`;
    const manifestFile = path.join(options.repoRoot, folder, 'package.json');
    const pkg = await readJson<PackageJson>(manifestFile).catch((err: unknown) => {
      throw new StepError('SBOM_PACKAGE_JSON_INVALID', `${manifestFile} is not valid JSON: ${(err as Error).message}`, { cause: err, hint: `fix the JSON syntax of ${manifestFile}` });
    });
    if (!pkg) {
      throw new StepError('SBOM_PACKAGE_JSON_MISSING', `the planned package ${label} has no package.json at ${manifestFile}`, {
        hint: 'fix `packages` in the release policy, or plan the release again',
      });
    }
    const entry = pkgs[folder];
    if (!entry) {
      problems.push(`${lock.name} has no entry for the workspace ${folder || '.'} (${planned.name})`);
      continue;
    }
    if (pkg.version !== undefined && entry.version !== undefined && pkg.version !== entry.version) {
      problems.push(`${label}: package.json has version ${pkg.version}, ${lock.name} records ${entry.version}`);
    }
    const declared = edgesOf(pkg).filter((d) => d.kind !== 'peer' && !d.name.startsWith(BUNDLED_WORKSPACE_SCOPE));
    const locked = edgesOf(entry).filter((d) => d.kind !== 'peer' && !d.name.startsWith(BUNDLED_WORKSPACE_SCOPE));
    for (const d of declared) {
      const l = locked.find((x) => x.name === d.name);
      if (!l) problems.push(`${label} declares ${d.name}@${d.spec} in package.json, but ${lock.name} does not list it`);
      else if (l.spec !== d.spec) problems.push(`${label} declares ${d.name}@${d.spec} in package.json, ${lock.name} records ${d.name}@${l.spec}`);
    }
    for (const l of locked) if (!declared.some((d) => d.name === l.name)) problems.push(`${lock.name} still lists ${l.name}@${l.spec} for ${label}, which its package.json no longer declares`);
    const root = node(planned.name, planned.version, { ...entry, license: pkg.license ?? entry.license }, folder, folder);
    roots.push(root.id);
    walked.add(folder);
    queue.push({ location: folder, id: root.id, edges: edgesOf(pkg) });
  }

  while (queue.length) {
    const { location, id, edges } = queue.shift() as (typeof queue)[number];
    const from = nodes.get(id) as SbomNpmPackage & { deps: Set<string> };
    for (const edge of edges) {
      if (edge.name.startsWith(BUNDLED_WORKSPACE_SCOPE)) continue;
      const found = resolveInLockfile(pkgs, location, edge.name);
      if (!found) {
        if (edge.kind === 'prod') problems.push(`${id} depends on ${edge.name}@${edge.spec}, which ${lock.name} does not have`);
        continue;
      }
      let target = found;
      let entry = pkgs[found] as LockEntry;
      let workspace: string | undefined;
      if (entry.link) {
        target = entry.resolved ?? '';
        workspace = target;
        const linked = pkgs[target];
        if (!linked) {
          problems.push(`${found} in ${lock.name} links to ${target || '(nothing)'}, which ${lock.name} does not have`);
          continue;
        }
        entry = linked;
      }
      const name = entry.name ?? edge.name;
      if (name.startsWith(BUNDLED_WORKSPACE_SCOPE)) continue;
      if (!entry.version) {
        problems.push(`${target} in ${lock.name} has no version`);
        continue;
      }
      // npm accepts a peer outside its range (legacy peer deps) and an overridden version by design
      const range = edge.kind === 'peer' || overridden.has(name) || overridden.has(edge.name) ? undefined : rangeOf(edge.spec);
      if (range !== undefined && !semver.satisfies(entry.version, range, { loose: true, includePrerelease: true })) {
        problems.push(`${id} needs ${edge.name}@${edge.spec}, but ${lock.name} has ${name}@${entry.version} at ${target}`);
      }
      const dep = node(name, entry.version, entry, target, workspace);
      if (dep.id !== id) from.deps.add(dep.id);
      if (!walked.has(target)) {
        walked.add(target);
        queue.push({ location: target, id: dep.id, edges: edgesOf(entry) });
      }
    }
  }

  if (damaged.length) {
    throw new StepError('SBOM_LOCKFILE_INVALID', `${lock.name} is damaged: ${damaged[0]}`, {
      details: damaged.slice(0, 30),
      hint: `restore ${lock.name} from git, or delete the damaged entries and run \`npm install\` at the repository root to write them again`,
    });
  }
  if (problems.length) {
    throw new StepError('SBOM_LOCKFILE_OUT_OF_SYNC', `${lock.name} does not match package.json: ${problems[0]}`, { details: problems.slice(0, 30), hint: LOCK_HINT });
  }

  const packages: SbomNpmPackage[] = [];
  for (const n of [...nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    let raw = licenseOf.get(n.id);
    if (raw === undefined) {
      // Lockfiles written by older npm versions carry no license: read the installed package.json.
      const where = locationOf.get(n.id) ?? '';
      raw = (await readJson<PackageJson>(path.join(options.repoRoot, where, 'package.json')).catch(() => undefined))?.license;
    }
    const verdict = spdxLicense(raw);
    if (verdict.expression === undefined) options.warn(`${n.id} ${verdict.reason}; the SBOM records its license as NOASSERTION`);
    const { deps, ...rest } = n;
    packages.push({ ...rest, license: verdict.expression, dependsOn: [...deps].sort() });
  }
  return { lockfile: lock.name, roots, packages };
}
