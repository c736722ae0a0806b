import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatError, isCodedError, readManifest } from '@mcp-release/manifest';
import { exec, formatBytes, formatDuration, streamLogger, type Logger } from '@mcp-release/pipeline';
import { DEFAULT_POLICY_PATH, layoutFor, loadPolicy, runRelease, smokeMcp, type ReleaseRunInput } from '@mcp-release/steps';
import { releaseEnv, startReleaseLab } from '@mcp-release/lab';
import pkg from '../package.json' with { type: 'json' };
import { COMMANDS, commandHelp, mainHelp, type CommandSpec } from './commands.js';
import { CliError } from './errors.js';
import { checkChangesetsCommand, versionCommand } from './changeset-commands.js';
import { initCommand, mergeCommand } from './init-command.js';
import { labCommand } from './lab-command.js';
import { lintCommand } from './lint-command.js';
import { recoverCommand } from './recover-command.js';
import { verifyBundleCommand, verifyCommand } from './verify-commands.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

const DEFAULT_OUT: Record<string, string> = { rehearse: 'out/rehearsal' };

function repoRootOf(cwd: string): string {
  try {
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return cwd;
  }
}

function parseMesonOptions(values: string[] | undefined): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const m = /^([A-Za-z_][A-Za-z0-9_:.-]*)=(.*)$/s.exec(v);
    if (!m) throw new CliError('USAGE', `--meson-option ${JSON.stringify(v)} is not NAME=VALUE`, { hint: 'write it as -D enable_float=true' });
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

function parseTimestamp(value: string | undefined): ReleaseRunInput['timestamp'] {
  if (value === undefined || value === 'commit') return { source: 'commit' };
  if (value === 'now') return { source: 'clock' };
  if (/^\d+$/.test(value)) return { source: 'explicit', epoch: Number(value) };
  throw new CliError('USAGE', `--timestamp ${JSON.stringify(value)} is not "commit", "now" or a number of seconds`, { hint: 'e.g. --timestamp commit' });
}

function parse(spec: CommandSpec, argv: string[]): Record<string, string | boolean | string[] | undefined> & { _positional?: string; _positionals?: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(spec.options).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }])),
      allowPositionals: true,
      strict: true,
    });
    if (spec.variadic) return { ...(values as Record<string, string | boolean | string[] | undefined>), _positionals: positionals };
    if (positionals.length > (spec.positional ? 1 : 0)) throw new CliError('USAGE', `unexpected argument ${JSON.stringify(positionals[spec.positional ? 1 : 0])}`, { hint: `usage: ${spec.usage}` });
    return { ...(values as Record<string, string | boolean | string[] | undefined>), ...(positionals[0] ? { _positional: positionals[0] } : {}) };
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError('USAGE', (err as Error).message.replace(/\. To specify a positional.*$/s, ''), { hint: `see \`mcp-release ${spec.name} --help\`` });
  }
}

/** Runs the CLI; returns the exit status. Never throws. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const wantsJson = argv.includes('--json');
  try {
    const [name, ...rest] = argv;
    if (!name || name === '--help' || name === '-h') {
      io.stdout(mainHelp(pkg.version));
      return name ? 0 : 2;
    }
    if (name === '--version' || name === '-v') {
      io.stdout(`${pkg.version}\n`);
      return 0;
    }
    if (name === 'help') {
      const c = COMMANDS.find((x) => x.name === rest[0]);
      io.stdout(c ? commandHelp(c) : mainHelp(pkg.version));
      return 0;
    }
    const spec = COMMANDS.find((c) => c.name === name);
    if (!spec) {
      throw new CliError('USAGE', `unknown command ${JSON.stringify(name)}`, { hint: `one of: ${COMMANDS.map((c) => c.name).join(', ')}; see mcp-release --help` });
    }
    const values = parse(spec, rest);
    if (values.help) {
      io.stdout(commandHelp(spec));
      return 0;
    }
    const json = values.json === true;
    const log: Logger = streamLogger(io.stderr);
    if (spec.name === 'smoke-mcp') return await runSmoke(values, io, json, log);
    if (spec.name === 'gate' && values._positional !== 'golden') {
      throw new CliError('USAGE', `unknown gate ${JSON.stringify(values._positional ?? '')}`, { hint: 'the gate is: mcp-release gate golden' });
    }
    if (spec.name === 'verify-bundle') return await verifyBundleCommand(values, io);
    if (spec.name === 'verify') return await verifyCommand(values, path.resolve(io.cwd, (values.repo as string | undefined) ?? repoRootOf(io.cwd)), io);
    if (spec.name === 'merge-manifests') return await mergeCommand(values, io);
    if (spec.name === 'init') return await initCommand(values, path.resolve(io.cwd, (values.repo as string | undefined) ?? repoRootOf(io.cwd)), io);
    if (spec.name === 'lint-workflows') {
      const repoRoot = path.resolve(io.cwd, (values.repo as string | undefined) ?? repoRootOf(io.cwd));
      return await lintCommand(values, values._positionals ?? [], repoRoot, io);
    }
    if (spec.name === 'version' || spec.name === 'check-changesets') {
      const repoRoot = path.resolve(io.cwd, (values.repo as string | undefined) ?? repoRootOf(io.cwd));
      return spec.name === 'version' ? await versionCommand(values, repoRoot, io, log) : await checkChangesetsCommand(values, repoRoot, io);
    }
    if (spec.name === 'lab') {
      const repoRoot = path.resolve(io.cwd, (values.repo as string | undefined) ?? repoRootOf(io.cwd));
      return await labCommand(values._positional, { ...values, repoRoot }, io, log);
    }
    const repoRoot = path.resolve(io.cwd, (values.repo as string | undefined) ?? repoRootOf(io.cwd));
    if (spec.name === 'recover') return await recoverCommand(values, repoRoot, io, log);
    if (spec.name === 'resume') {
      if (!values.manifest) throw new CliError('USAGE', 'resume needs the manifest of the release to continue', { hint: 'mcp-release resume --manifest out/release-run/manifest.json' });
      const file = path.resolve(io.cwd, values.manifest as string);
      if (path.basename(file) !== 'manifest.json') throw new CliError('USAGE', `${values.manifest as string} is not a release manifest (manifest.json)`, { hint: 'pass the manifest.json of the release folder (--out) that stopped' });
      await readManifest(file);
      values.out = path.dirname(file);
    }
    const outDir = path.resolve(io.cwd, (values.out as string | undefined) ?? path.join(repoRoot, DEFAULT_OUT[spec.name] ?? 'out/release-run'));
    const nativeSource = values['native-source'] as string | undefined;
    const mesonOptions = parseMesonOptions(values['meson-option'] as string[] | undefined);
    const input: ReleaseRunInput = {
      pipeline: spec.pipeline ?? 'rehearse',
      repoRoot,
      outDir,
      ...(values.policy ? { policyPath: path.resolve(io.cwd, values.policy as string) } : {}),
      ...(nativeSource ? { nativeSource: path.resolve(io.cwd, nativeSource) } : {}),
      ...(mesonOptions ? { mesonOptions } : {}),
      ...(values['no-native'] ? { noNative: true } : {}),
      ...(values['vmaf-bin'] ? { vmafBin: path.resolve(io.cwd, values['vmaf-bin'] as string) } : {}),
      timestamp: parseTimestamp(values.timestamp as string | undefined),
      ...(values.replace ? { replace: true } : {}),
      deps: { env: io.env },
      log,
    };
    const lab = spec.name === 'rehearse' && !io.env.ACTIONS_ID_TOKEN_REQUEST_URL ? await startRehearsalLab(repoRoot, outDir, input.policyPath, log) : undefined;
    if (lab) input.deps = { env: { ...io.env, ...lab.env } };
    let result;
    try {
      result = await runRelease(input);
    } finally {
      await lab?.stop();
    }
    const { run, manifest, layout } = result;
    if (json) {
      io.stdout(
        `${JSON.stringify(
          {
            ok: run.ok,
            command: spec.name,
            outDir: layout.outDir,
            releaseDir: layout.releaseDir,
            manifest: layout.manifestPath,
            durationMs: run.durationMs,
            steps: run.steps,
            artifacts: manifest.artifacts,
            ...(run.ok ? {} : { error: isCodedError(run.error) ? run.error.toJSON() : { code: 'INTERNAL', message: String(run.error) } }),
          },
          null,
          2,
        )}\n`,
      );
    } else {
      io.stdout(renderHuman(spec.name, run, manifest, layout));
    }
    if (!run.ok) {
      io.stderr(`${formatError(run.error)}\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    const usage = err instanceof CliError;
    if (wantsJson) io.stdout(`${JSON.stringify({ ok: false, error: isCodedError(err) ? err.toJSON() : { code: 'INTERNAL', message: String(err) } }, null, 2)}\n`);
    io.stderr(`${formatError(err)}\n`);
    if (!isCodedError(err) && io.env.MCP_RELEASE_DEBUG) io.stderr(`${(err as Error).stack}\n`);
    return usage ? 2 : 1;
  }
}

/**
 * The rehearsal's outside world: the lab, in-process, with its state in `<out>/lab` so that a
 * re-run into the same folder keeps its trust root, registry and releases. Its tokens carry the
 * planned commit as `sha` and the policy's signer and trusted-publisher names, as GitHub's would
 * for the release workflow. The repository is served by the lab's git remote with the planned
 * commit as the default branch, and each package name is claimed once (the maintainer's one-time
 * first publish). The lab registry is not the install registry: only publishing goes there.
 */
async function startRehearsalLab(repoRoot: string, outDir: string, policyPath: string | undefined, log: Logger): Promise<{ env: Record<string, string>; stop(): Promise<void> }> {
  const policy = await loadPolicy(policyPath ?? path.join(repoRoot, DEFAULT_POLICY_PATH));
  let commit = '';
  try {
    commit = (await readManifest(layoutFor(outDir).manifestPath)).plan.commit;
  } catch {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  }
  log.info('starting the lab (GitHub OIDC, Sigstore, npm registry, GitHub API and git) on 127.0.0.1');
  const lab = await startReleaseLab({ stateDir: path.join(outDir, 'lab'), repoRoot, commit, policy, log: (l) => log.info(l) });
  return { env: releaseEnv(lab), stop: () => lab.stop() };
}

async function runSmoke(values: ReturnType<typeof parse>, io: CliIo, json: boolean, log: Logger): Promise<number> {
  const tarball = values._positional;
  if (!tarball) throw new CliError('USAGE', 'smoke-mcp needs the tarball to test', { hint: 'mcp-release smoke-mcp vmaf-mcp-1.2.3.tgz --vmaf-bin /usr/local/bin/vmaf' });
  const vmafBin = (values['vmaf-bin'] as string | undefined) ?? io.env.VMAF_BIN;
  if (!vmafBin) throw new CliError('USAGE', 'smoke-mcp needs a vmaf-compatible CLI to score with', { hint: 'pass --vmaf-bin PATH or set VMAF_BIN' });
  const report = await smokeMcp({
    tarball: path.resolve(io.cwd, tarball),
    vmafBin: path.resolve(io.cwd, vmafBin),
    ...(values['lib-dir'] ? { libDir: path.resolve(io.cwd, values['lib-dir'] as string) } : {}),
    exec,
    env: io.env,
    log: (l) => log.progress(l),
  });
  if (json) io.stdout(`${JSON.stringify({ ok: true, ...report }, null, 2)}\n`);
  else {
    io.stdout(
      [
        `smoke-mcp: ${report.package}@${report.version} passed`,
        `  initialize   serverInfo ${report.serverInfo.name}@${report.serverInfo.version}`,
        `  tools/list   ${report.tools.join(', ')}`,
        `  vmaf_score   psnr_y ${report.score.measured} over ${report.score.frames} frames (expected ${report.score.expected})`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}

function renderHuman(
  command: string,
  run: Awaited<ReturnType<typeof runRelease>>['run'],
  manifest: Awaited<ReturnType<typeof runRelease>>['manifest'],
  layout: Awaited<ReturnType<typeof runRelease>>['layout'],
): string {
  const lines = ['', `mcp-release ${command}: ${run.ok ? 'done' : 'FAILED'} in ${formatDuration(run.durationMs)}`, '', 'Steps:'];
  for (const s of run.steps) {
    const mark = s.state === 'succeeded' ? '✔' : s.state === 'skipped' ? '↷' : '✖';
    const detail = s.reason ?? s.error?.message ?? s.notes.join('; ');
    lines.push(`  ${mark} ${s.name.padEnd(14)} ${formatDuration(s.durationMs).padStart(9)}  ${detail}`);
  }
  if (manifest.artifacts.length) {
    lines.push('', `Release files in ${layout.releaseDir}:`);
    const width = Math.max(...manifest.artifacts.map((a) => a.path.length));
    for (const a of [...manifest.artifacts].sort((x, y) => (x.path < y.path ? -1 : 1))) {
      lines.push(`  ${a.path.padEnd(width)}  ${formatBytes(a.size).padStart(10)}  sha256:${a.sha256}`);
    }
  }
  lines.push('', `Manifest: ${layout.manifestPath}`, '');
  return lines.join('\n');
}
