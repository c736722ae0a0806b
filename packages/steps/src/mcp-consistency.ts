import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { t as listTar } from 'tar';
import { ManifestError, resolveInside, type Artifact, type PlannedPackage } from '@mcp-release/manifest';
import { hashWithProgress, skip, type Context, type Exec, type Step } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import type { ReleaseOptions } from './options.js';
import { linkNativeLibrary, smokeMcpStep, startPackedServer } from './smoke-mcp.js';
import { digestOf } from './source.js';

/** The MCP registry metadata file (name, version, packages) looked for next to the package. */
export const SERVER_JSON = 'server.json';

/** A package.json larger than this inside a tarball is refused (it is read into memory). */
const MAX_PACKAGE_JSON = 1024 * 1024;

export interface McpServerInfo {
  name: string;
  version: string;
}

export interface McpConsistencyInput {
  /** The packed tarball of the MCP server package. */
  tarball: string;
  /** The planned package: name, version, and its folder relative to the repository root. */
  planned: PlannedPackage;
  repoRoot: string;
  /** serverInfo as the smoke test recorded it; without it the packed server is started and asked. */
  serverInfo?: McpServerInfo;
  /** For starting the packed server (only without serverInfo). */
  exec: Exec;
  env: NodeJS.ProcessEnv;
  /** VMAF_BIN for the started server (it is not asked to score); default `vmaf`. */
  vmafBin?: string;
  libDir?: string;
  log?: (line: string) => void;
}

export interface McpConsistencyCheck {
  /** What was compared, e.g. `server.json version`. */
  what: string;
  expected: string;
  actual: string;
  /** The file to change when they differ (relative to the repository root). */
  file: string;
  ok: boolean;
}

export interface McpConsistencyReport {
  package: string;
  version: string;
  serverInfo: McpServerInfo & { source: 'smoke-mcp' | 'started' };
  /** `mcpName` in the packed package.json. */
  mcpName: string | null;
  /** The server.json compared (relative to the repository root), if there is one. */
  serverJson: string | null;
  checks: McpConsistencyCheck[];
}

interface Mismatch {
  code: string;
  message: string;
  hint: string;
}

/** The package.json inside an npm tarball, read by streaming the archive. */
export async function packedPackageJson(tarball: string): Promise<Record<string, unknown>> {
  let text = '';
  let tooBig = false;
  await listTar({
    file: tarball,
    filter: (p) => p === 'package/package.json',
    onReadEntry: (entry) => {
      if ((entry.size ?? 0) > MAX_PACKAGE_JSON) tooBig = true;
      entry.on('data', (c: Buffer) => {
        if (!tooBig) text += c.toString('utf8');
      });
    },
  }).catch((err: unknown) => {
    throw new StepError('MCP_TARBALL_UNREADABLE', `${path.basename(tarball)} is not a readable npm tarball: ${(err as Error).message}`, {
      cause: err,
      hint: 'pack it again (mcp-release build-npm)',
    });
  });
  if (tooBig) throw new StepError('MCP_TARBALL_UNREADABLE', `package/package.json in ${path.basename(tarball)} is larger than ${MAX_PACKAGE_JSON} bytes`, { hint: 'pack it again (mcp-release build-npm)' });
  if (!text) throw new StepError('MCP_TARBALL_UNREADABLE', `${path.basename(tarball)} has no package/package.json`, { hint: 'pass the .tgz that npm pack wrote' });
  try {
    const value: unknown = JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new StepError('MCP_TARBALL_UNREADABLE', `package/package.json in ${path.basename(tarball)} is not valid JSON: ${(err as Error).message}`, { cause: err, hint: 'pack it again (mcp-release build-npm)' });
  }
}

/** server.json of the package: in its folder, else at the repository root. Undefined when neither exists. */
export async function findServerJson(repoRoot: string, packagePath: string): Promise<{ file: string; text: string } | undefined> {
  const candidates = [...new Set([path.posix.join(packagePath.split(path.sep).join('/'), SERVER_JSON), SERVER_JSON])];
  for (const rel of candidates) {
    try {
      return { file: rel, text: await readFile(path.join(repoRoot, rel), 'utf8') };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StepError('MCP_SERVER_JSON_UNREADABLE', `cannot read ${rel}: ${(err as Error).message}`, { cause: err, hint: `make ${rel} a readable file` });
      }
    }
  }
  return undefined;
}

/** Asks the packed server for its serverInfo: installs the tarball as a user would and initializes. */
async function askServerInfo(input: McpConsistencyInput): Promise<McpServerInfo> {
  const roots = await mkdtemp(path.join(tmpdir(), 'mcp-release-consistency-'));
  try {
    const server = await startPackedServer({
      tarball: input.tarball,
      vmafBin: input.vmafBin ?? 'vmaf',
      ...(input.libDir ? { libDir: input.libDir } : {}),
      args: [roots],
      exec: input.exec,
      env: input.env,
      clientName: 'mcp-release-consistency',
      codePrefix: 'MCP_CONSISTENCY',
      ...(input.log ? { log: input.log } : {}),
    });
    try {
      const info = server.client.getServerVersion();
      if (!info) throw new StepError('MCP_SERVERINFO_MISSING', 'the packed server answered initialize without serverInfo', { hint: 'give the server a name and version (read from its package.json)' });
      return { name: info.name, version: info.version };
    } finally {
      await server.close();
    }
  } finally {
    await rm(roots, { recursive: true, force: true });
  }
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined ? '(none)' : JSON.stringify(v);
}

/**
 * Checks that every place a release of the MCP server states its identity agrees with the plan:
 * the version in the packed package.json, the serverInfo.version the server reports, and, when
 * the repository has a server.json (MCP registry metadata), its version, its npm package entry
 * (identifier and version) and its name against `mcpName` in the packed package.json. Every
 * mismatch is listed; the first one is thrown as a coded error naming both values and the file
 * to fix.
 */
export async function checkMcpConsistency(input: McpConsistencyInput): Promise<McpConsistencyReport> {
  const { planned } = input;
  const pkgFile = path.posix.join(planned.path, 'package.json');
  const tarballName = path.basename(input.tarball);
  const checks: McpConsistencyCheck[] = [];
  const mismatches: Mismatch[] = [];
  const compare = (what: string, expected: string, actual: unknown, file: string, mismatch: Omit<Mismatch, 'message'> & { message: string }): void => {
    const ok = actual === expected;
    checks.push({ what, expected, actual: str(actual), file, ok });
    if (!ok) mismatches.push(mismatch);
  };

  const pkg = await packedPackageJson(input.tarball);
  compare('packed package.json name', planned.name, pkg.name, pkgFile, {
    code: 'MCP_TARBALL_NAME',
    message: `${tarballName} holds the package ${str(pkg.name)}, but the plan releases ${planned.name}`,
    hint: `the tarball is not the planned package: pack ${planned.path} again (mcp-release build-npm) from the planned commit`,
  });
  compare('packed package.json version', planned.version, pkg.version, pkgFile, {
    code: 'MCP_TARBALL_VERSION',
    message: `${tarballName} holds version ${str(pkg.version)} in its package.json, but the planned version is ${planned.version}`,
    hint: `pack ${planned.path} again from the planned commit (mcp-release build-npm); the version comes from ${pkgFile}`,
  });

  const serverInfo = input.serverInfo ? { ...input.serverInfo, source: 'smoke-mcp' as const } : { ...(await askServerInfo(input)), source: 'started' as const };
  compare('serverInfo.version', planned.version, serverInfo.version, planned.path, {
    code: 'MCP_SERVERINFO_VERSION',
    message: `the packed server reports serverInfo.version ${str(serverInfo.version)}, but the planned version is ${planned.version}`,
    hint: `make the server in ${planned.path} read its version from its own package.json (${pkgFile}) instead of a literal in its source, then pack again`,
  });

  const mcpName = typeof pkg.mcpName === 'string' ? pkg.mcpName : null;
  const found = await findServerJson(input.repoRoot, planned.path);
  if (found) {
    let doc: { name?: unknown; version?: unknown; version_detail?: { version?: unknown }; packages?: unknown };
    try {
      doc = JSON.parse(found.text) as typeof doc;
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
    } catch (err) {
      throw new StepError('MCP_SERVER_JSON_INVALID', `${found.file} is not valid JSON: ${(err as Error).message}`, { cause: err, hint: `fix the JSON in ${found.file}` });
    }
    const version = doc.version ?? doc.version_detail?.version;
    compare('server.json version', planned.version, version, found.file, {
      code: 'MCP_SERVER_JSON_VERSION',
      message: `${found.file} has version ${str(version)}, but the planned version is ${planned.version}`,
      hint: `set "version": "${planned.version}" in ${found.file}, in the same commit as the version bump of ${pkgFile}`,
    });
    if (mcpName === null) {
      checks.push({ what: 'package.json mcpName', expected: str(doc.name), actual: '(none)', file: pkgFile, ok: false });
      mismatches.push({
        code: 'MCP_NAME_MISSING',
        message: `${pkgFile} has no mcpName, but ${found.file} names the server ${str(doc.name)}`,
        hint: `add "mcpName": ${JSON.stringify(str(doc.name))} to ${pkgFile}: the MCP registry accepts the npm package only when its mcpName equals the server.json name`,
      });
    } else {
      compare('server.json name = mcpName', mcpName, doc.name, found.file, {
        code: 'MCP_NAME_MISMATCH',
        message: `${found.file} names the server ${str(doc.name)}, but mcpName in ${pkgFile} is ${mcpName}`,
        hint: `make "name" in ${found.file} and "mcpName" in ${pkgFile} the same: the MCP registry accepts the npm package only when they are equal`,
      });
    }
    const entries = (Array.isArray(doc.packages) ? doc.packages : []).filter(
      (p): p is Record<string, unknown> => !!p && typeof p === 'object' && (p.registryType ?? p.registry_type ?? p.registry_name) === 'npm',
    );
    const identifier = (p: Record<string, unknown>): unknown => p.identifier ?? p.name;
    const entry = entries.find((p) => identifier(p) === planned.name);
    if (entries.length === 0) {
      checks.push({ what: 'server.json npm package', expected: planned.name, actual: '(none)', file: found.file, ok: false });
      mismatches.push({
        code: 'MCP_SERVER_JSON_NO_NPM_PACKAGE',
        message: `${found.file} lists no npm package, but the server is released to npm as ${planned.name}`,
        hint: `add { "registryType": "npm", "identifier": "${planned.name}", "version": "${planned.version}", "transport": { "type": "stdio" } } to "packages" in ${found.file}`,
      });
    } else if (!entry) {
      const listed = entries.map((p) => str(identifier(p))).join(', ');
      checks.push({ what: 'server.json npm identifier', expected: planned.name, actual: listed, file: found.file, ok: false });
      mismatches.push({
        code: 'MCP_SERVER_JSON_IDENTIFIER',
        message: `${found.file} lists the npm package ${listed}, but the package released is ${planned.name}`,
        hint: `set "identifier": "${planned.name}" in the npm entry of "packages" in ${found.file} (the "name" in ${pkgFile})`,
      });
    } else {
      checks.push({ what: 'server.json npm identifier', expected: planned.name, actual: planned.name, file: found.file, ok: true });
      compare('server.json npm package version', planned.version, entry.version, found.file, {
        code: 'MCP_SERVER_JSON_PACKAGE_VERSION',
        message: `the npm package ${planned.name} in ${found.file} has version ${str(entry.version)}, but the planned version is ${planned.version}`,
        hint: `set "version": "${planned.version}" in the npm entry of "packages" in ${found.file}, in the same commit as the version bump`,
      });
    }
  }

  const [first] = mismatches;
  if (first) {
    throw new StepError(first.code, first.message, {
      hint: first.hint,
      ...(mismatches.length > 1 ? { details: mismatches.map((m) => `${m.code}: ${m.message}`) } : {}),
    });
  }
  return { package: planned.name, version: planned.version, serverInfo, mcpName, serverJson: found?.file ?? null, checks };
}

/** serverInfo from the smoke test's record, when that record describes exactly these inputs. */
async function recordedServerInfo(ctx: Context<ReleaseOptions>, name: string): Promise<McpServerInfo | undefined> {
  const record = ctx.manifest.steps[smokeMcpStep.name];
  if (record?.state !== 'succeeded' || !record.fingerprint || record.data?.package !== name) return undefined;
  if (record.fingerprint !== (await smokeMcpStep.fingerprint?.(ctx))) return undefined;
  const info = record.data.serverInfo as Partial<McpServerInfo> | undefined;
  return typeof info?.name === 'string' && typeof info.version === 'string' ? { name: info.name, version: info.version } : undefined;
}

function mcpTarget(ctx: Context<ReleaseOptions>): { name: string; planned: PlannedPackage | undefined; tarball: Artifact | undefined } {
  const name = ctx.options.policy.mcp?.package ?? '';
  return {
    name,
    planned: ctx.manifest.plan.packages.find((p) => p.name === name),
    tarball: ctx.manifest.artifacts.find((a) => a.kind === 'npm-tarball' && a.meta?.name === name),
  };
}

/**
 * Before anything is published: the MCP server's version and names agree everywhere a client or
 * the MCP registry reads them (packed package.json, serverInfo, server.json, mcpName).
 */
export const mcpConsistencyStep: Step<ReleaseOptions> = {
  name: 'mcp-consistency',
  description: 'check that the packed MCP server, its serverInfo, server.json and mcpName agree with the planned version and names',
  skip(ctx) {
    const { name, planned, tarball } = mcpTarget(ctx);
    if (!name) return skip('no MCP server package configured (mcp.package in the policy)');
    if (!planned) return skip(`${name} is not among the planned packages`);
    if (!tarball) return skip(`no tarball of ${name} in this release`);
    return undefined;
  },
  async fingerprint(ctx) {
    const { planned, tarball } = mcpTarget(ctx);
    const serverJson = planned ? await findServerJson(ctx.repoRoot, planned.path) : undefined;
    return digestOf({
      step: 'mcp-consistency',
      planned: planned ?? null,
      tarball: tarball?.sha256 ?? null,
      serverJson: serverJson ? [serverJson.file, createHash('sha256').update(serverJson.text).digest('hex')] : null,
      serverInfo: planned ? ((await recordedServerInfo(ctx, planned.name)) ?? null) : null,
    });
  },
  async run(ctx) {
    const { name, planned, tarball } = mcpTarget(ctx);
    if (!planned || !tarball) throw new StepError('MCP_CONSISTENCY_NO_TARBALL', `there is no planned tarball of ${name}`, { hint: 'run build-npm first' });
    const file = await resolveInside(ctx.releaseDir, tarball.path, 'release file');
    const digests = await hashWithProgress(ctx, file, tarball.path);
    if (digests.sha256 !== tarball.sha256) {
      throw new ManifestError('ARTIFACT_CHANGED', `${tarball.path} changed after ${tarball.producedBy} recorded it (sha256 ${tarball.sha256.slice(0, 16)}… on record, ${digests.sha256.slice(0, 16)}… on disk)`, {
        hint: `something modified the release folder; re-run ${tarball.producedBy} or restore the file`,
      });
    }
    const serverInfo = await recordedServerInfo(ctx, name);
    const cli = ctx.manifest.artifacts.find((a) => a.kind === 'native-cli' && a.platform === ctx.options.platform);
    const vmafBin = ctx.options.vmafBin ?? (cli ? path.join(ctx.releaseDir, cli.path) : undefined);
    const libDir =
      serverInfo || ctx.options.vmafBin
        ? undefined
        : await linkNativeLibrary(ctx.releaseDir, ctx.manifest.artifacts.find((a) => a.kind === 'native-library' && a.platform === ctx.options.platform), path.join(ctx.workDir, 'mcp-consistency-lib'));
    const report = await checkMcpConsistency({
      tarball: file,
      planned,
      repoRoot: ctx.repoRoot,
      ...(serverInfo ? { serverInfo } : {}),
      exec: ctx.deps.exec,
      env: ctx.deps.env,
      ...(vmafBin ? { vmafBin } : {}),
      ...(libDir ? { libDir } : {}),
      log: (l) => ctx.log.progress(l),
    });
    const where = [`package.json ${report.version}`, `serverInfo ${report.serverInfo.version} (${report.serverInfo.source === 'smoke-mcp' ? 'from the smoke test' : 'asked'})`];
    if (report.serverJson) where.push(`${report.serverJson} ${report.version} as ${report.mcpName}`);
    return {
      notes: [`${report.package}@${report.version}: ${where.join(', ')}`],
      data: { ...report },
    };
  },
};
