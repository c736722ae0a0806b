import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { t as listTar } from 'tar';
import { execChecked, skip, tailLines, type Exec, type Step } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import type { ReleaseOptions } from './options.js';
import { digestOf } from './source.js';

export const EXPECTED_TOOLS = ['list_backends', 'list_models', 'vmaf_benchmark', 'vmaf_score'];

export interface SmokeInput {
  tarball: string;
  /** The vmaf-compatible CLI the server scores with (VMAF_BIN). */
  vmafBin: string;
  /** Folder put on LD_LIBRARY_PATH (the native library under its soname). */
  libDir?: string;
  exec: Exec;
  env: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface SmokeReport {
  package: string;
  version: string;
  serverInfo: { name: string; version: string };
  tools: string[];
  score: { metric: string; measured: number; expected: number; frames: number };
}

/** The package.json inside an npm tarball, read by streaming the archive. */
export async function tarballManifest(tarball: string): Promise<{ name: string; version: string; bin?: string | Record<string, string> }> {
  let text = '';
  await listTar({
    file: tarball,
    filter: (p) => p === 'package/package.json',
    onReadEntry: (entry) => {
      entry.on('data', (c: Buffer) => (text += c.toString('utf8')));
    },
  }).catch((err: unknown) => {
    throw new StepError('SMOKE_NOT_A_TARBALL', `${tarball} is not a readable npm tarball: ${(err as Error).message}`, { hint: 'pass the .tgz that npm pack wrote', cause: err });
  });
  if (!text) throw new StepError('SMOKE_NOT_A_TARBALL', `${tarball} has no package/package.json`, { hint: 'pass the .tgz that npm pack wrote' });
  return JSON.parse(text) as { name: string; version: string; bin?: string | Record<string, string> };
}

/** A synthetic 8-bit 4:2:0 pair and its luma PSNR by libvmaf's definition, computed here independently. */
export function syntheticPair(width = 176, height = 144, frames = 3): { ref: Buffer; dis: Buffer; psnrY: number } {
  const frameBytes = width * height * 1.5;
  const ref = Buffer.alloc(frameBytes * frames);
  const dis = Buffer.alloc(frameBytes * frames);
  let sum = 0;
  for (let f = 0; f < frames; f += 1) {
    let sse = 0;
    for (let i = 0; i < frameBytes; i += 1) {
      const r = (i * 31 + f * 17 + ((i / width) | 0) * 7) & 0xff;
      const d = Math.min(255, Math.max(0, r + (((i * 2654435761) >>> 0) % 9) - 4 - f));
      ref[f * frameBytes + i] = r;
      dis[f * frameBytes + i] = d;
      if (i < width * height) sse += (r - d) ** 2;
    }
    const mse = sse / (width * height);
    sum += Math.min(10 * Math.log10((255 * 255) / Math.max(mse, 1e-16)), 60);
  }
  return { ref, dis, psnrY: sum / frames };
}

export interface PackedServer {
  client: Client;
  pkg: { name: string; version: string };
  /** Closes the client (and with it the server) and removes the project. */
  close(): Promise<void>;
}

export interface PackedServerInput {
  tarball: string;
  /** The vmaf-compatible CLI the server scores with (VMAF_BIN). */
  vmafBin: string;
  /** Folder put on LD_LIBRARY_PATH (the native library under its soname). */
  libDir?: string;
  /** The server's arguments (the folders it may read). */
  args: string[];
  exec: Exec;
  env: NodeJS.ProcessEnv;
  clientName: string;
  /** Error codes are `<prefix>_NO_BIN`, `<prefix>_INSTALL_FAILED`, `<prefix>_START_FAILED`. */
  codePrefix: string;
  log?: (line: string) => void;
}

/**
 * Installs a packed MCP server tarball into an empty project exactly as a user does (`npm install
 * <tarball>`), starts its bin over stdio and connects the MCP SDK client to it.
 */
export async function startPackedServer(input: PackedServerInput): Promise<PackedServer> {
  const pkg = await tarballManifest(input.tarball);
  const binName = typeof pkg.bin === 'string' ? pkg.name : Object.keys(pkg.bin ?? {})[0];
  if (!binName) throw new StepError(`${input.codePrefix}_NO_BIN`, `${pkg.name}@${pkg.version} declares no bin, so an MCP client cannot start it`, { hint: 'add "bin" to its package.json' });
  const dir = await mkdtemp(path.join(tmpdir(), 'mcp-release-server-'));
  let client: Client | undefined;
  let stderr = '';
  const close = async (): Promise<void> => {
    await client?.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await writeFile(path.join(dir, 'package.json'), '{"name":"packed-server-check","version":"0.0.0","private":true}\n');
    input.log?.(`installing ${path.basename(input.tarball)} into an empty project`);
    await execChecked(input.exec, 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.resolve(input.tarball)], {
      cwd: dir,
      env: { ...input.env, npm_config_update_notifier: 'false' },
      code: `${input.codePrefix}_INSTALL_FAILED`,
      what: `installing ${pkg.name}@${pkg.version} from its tarball failed`,
      hint: 'the packed package cannot be installed as a user would: check its dependencies and the registry (npm ping)',
    });
    const env: Record<string, string> = { PATH: input.env.PATH ?? '', HOME: input.env.HOME ?? dir, VMAF_BIN: input.vmafBin };
    if (input.libDir) env.LD_LIBRARY_PATH = [input.libDir, input.env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter);
    const transport = new StdioClientTransport({ command: path.join(dir, 'node_modules', '.bin', binName), args: input.args, env, stderr: 'pipe' });
    transport.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    client = new Client({ name: input.clientName, version: '1.0.0' });
    input.log?.(`starting ${binName} over stdio`);
    await client.connect(transport).catch((err: unknown) => {
      throw new StepError(`${input.codePrefix}_START_FAILED`, `${binName} did not answer initialize: ${(err as Error).message}`, { details: tailLines(stderr, 10), hint: 'run the bin by hand to see why it exits', cause: err });
    });
    return { client, pkg, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Installs the packed server into an empty project, starts its bin over stdio with the MCP SDK
 * client, and checks initialize (serverInfo.version is the tarball's), tools/list (the four tools)
 * and one vmaf_score call against a PSNR computed independently.
 */
export async function smokeMcp(input: SmokeInput): Promise<SmokeReport> {
  const data = await mkdtemp(path.join(tmpdir(), 'mcp-release-smoke-'));
  const pair = syntheticPair();
  await writeFile(path.join(data, 'ref.yuv'), pair.ref);
  await writeFile(path.join(data, 'dis.yuv'), pair.dis);
  let server: PackedServer | undefined;
  try {
    server = await startPackedServer({
      tarball: input.tarball,
      vmafBin: input.vmafBin,
      ...(input.libDir ? { libDir: input.libDir } : {}),
      args: [data],
      exec: input.exec,
      env: input.env,
      clientName: 'mcp-release-smoke',
      codePrefix: 'SMOKE',
      ...(input.log ? { log: input.log } : {}),
    });
    const { client, pkg } = server;
    const info = client.getServerVersion();
    if (!info || info.version !== pkg.version) {
      throw new StepError('SMOKE_VERSION_MISMATCH', `serverInfo.version is ${JSON.stringify(info?.version)} but the tarball is ${pkg.name}@${pkg.version}`, {
        hint: 'the server must report the version in its own package.json; do not write the version into the code',
      });
    }
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    const missing = EXPECTED_TOOLS.filter((t) => !tools.includes(t));
    if (missing.length) throw new StepError('SMOKE_TOOLS_MISSING', `tools/list lacks ${missing.join(', ')}`, { details: [`listed: ${tools.join(', ')}`], hint: 'register every tool in the server' });

    input.log?.('calling vmaf_score on a synthetic pair');
    const result = (await client.callTool({
      name: 'vmaf_score',
      arguments: { reference: 'ref.yuv', distorted: 'dis.yuv', width: 176, height: 144, pixel_format: '420', bit_depth: 8, model: 'none', features: ['psnr'] },
    })) as { isError?: boolean; content: Array<{ text?: string }>; structuredContent?: { metrics?: Record<string, { mean: number }>; frames?: number } };
    if (result.isError) {
      throw new StepError('SMOKE_SCORE_FAILED', `vmaf_score returned an error: ${result.content.map((c) => c.text).join(' ')}`, {
        hint: `the server could not score with ${input.vmafBin}; check the native CLI`,
      });
    }
    const measured = result.structuredContent?.metrics?.psnr_y?.mean;
    if (typeof measured !== 'number' || Math.abs(measured - pair.psnrY) > 5e-4) {
      throw new StepError('SMOKE_SCORE_WRONG', `vmaf_score gave psnr_y ${measured} but the pair's PSNR is ${pair.psnrY.toFixed(6)}`, {
        hint: 'the packed server or the native CLI computes PSNR wrongly',
      });
    }
    return {
      package: pkg.name,
      version: pkg.version,
      serverInfo: { name: info.name, version: info.version },
      tools,
      score: { metric: 'psnr_y', measured, expected: Number(pair.psnrY.toFixed(6)), frames: result.structuredContent?.frames ?? 0 },
    };
  } finally {
    await server?.close();
    await rm(data, { recursive: true, force: true });
  }
}


/** Installs the release's native library under its soname in `dir`, for LD_LIBRARY_PATH. */
export async function linkNativeLibrary(releaseDir: string, artifact: { path: string; meta?: Record<string, unknown> } | undefined, dir: string): Promise<string | undefined> {
  const soname = artifact?.meta?.soname;
  if (!artifact || typeof soname !== 'string') return undefined;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await symlink(path.join(releaseDir, artifact.path), path.join(dir, soname));
  return dir;
}

/**
 * The packed-tarball gate: the exact bytes that will be published start as an MCP server and
 * score. It scores with the native CLI this release built.
 */
export const smokeMcpStep: Step<ReleaseOptions> = {
  name: 'smoke-mcp',
  description: 'install the packed MCP server, start it over stdio and score with it',
  skip(ctx) {
    const name = ctx.options.policy.mcp?.package;
    if (!name) return skip('no MCP server package configured (mcp.package in the policy)');
    if (!ctx.manifest.artifacts.some((a) => a.kind === 'npm-tarball' && a.meta?.name === name)) return skip(`no tarball of ${name} in this release`);
    return undefined;
  },
  fingerprint(ctx) {
    const relevant = ctx.manifest.artifacts.filter((a) => a.kind === 'npm-tarball' || ((a.kind === 'native-cli' || a.kind === 'native-library') && a.platform === ctx.options.platform));
    return digestOf({ step: 'smoke-mcp', inputs: relevant.map((a) => [a.path, a.sha256]), vmafBin: ctx.options.vmafBin ?? null });
  },
  async run(ctx) {
    const name = ctx.options.policy.mcp?.package as string;
    const tarball = ctx.manifest.artifacts.find((a) => a.kind === 'npm-tarball' && a.meta?.name === name);
    const cli = ctx.manifest.artifacts.find((a) => a.kind === 'native-cli' && a.platform === ctx.options.platform);
    const vmafBin = ctx.options.vmafBin ?? (cli ? path.join(ctx.releaseDir, cli.path) : undefined);
    if (!vmafBin) {
      throw new StepError('SMOKE_NO_SCORER', `there is no native CLI for ${ctx.options.platform} in this release to score with`, {
        hint: 'build the native artifacts (native.source in the policy) or pass --vmaf-bin PATH',
      });
    }
    const libDir = ctx.options.vmafBin
      ? undefined
      : await linkNativeLibrary(ctx.releaseDir, ctx.manifest.artifacts.find((a) => a.kind === 'native-library' && a.platform === ctx.options.platform), path.join(ctx.workDir, 'smoke-lib'));
    const report = await smokeMcp({
      tarball: path.join(ctx.releaseDir, (tarball as { path: string }).path),
      vmafBin,
      ...(libDir ? { libDir } : {}),
      exec: ctx.deps.exec,
      env: ctx.deps.env,
      log: (l) => ctx.log.progress(l),
    });
    return {
      notes: [`${report.serverInfo.name}@${report.serverInfo.version}: ${report.tools.length} tools, psnr_y ${report.score.measured} (expected ${report.score.expected})`],
      data: { ...report },
    };
  },
};
