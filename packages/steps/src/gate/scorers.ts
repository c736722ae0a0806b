import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tailLines, type Exec } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import { startPackedServer } from '../smoke-mcp.js';
import type { GoldenCheck, GoldenTable } from './table.js';

/** Something that computes the pooled value of a golden check. */
export interface GateScorer {
  /** `vmaf-cli`, `ffmpeg` or `mcp`. */
  name: string;
  /** What runs: the binary, or the tarball for mcp. */
  binary: string;
  version?: string;
  note?: string;
  /** Whether `--backend <gpu>` can be asked of it (the vmaf CLI only). */
  selectsBackend: boolean;
  /** Undefined when it can compute the check, else why not. */
  applicable(check: GoldenCheck): string | undefined;
  score(check: GoldenCheck, backend: string): Promise<number>;
  close?(): Promise<void>;
}

export interface ScorerDeps {
  exec: Exec;
  env: NodeJS.ProcessEnv;
  fixturesDir: string;
  /** Per scoring run; default 10 minutes. */
  timeoutMs?: number;
}

/** What a vmaf-compatible CLI's usage text shows. */
export interface CliUsage {
  text: string;
  options: string[];
  /** Backends the text mentions (`--no_<gpu>` lines, the `--backend` selector). Never proof that one was built. */
  advertised: string[];
}

export const GPU_BACKENDS = ['cuda', 'sycl', 'vulkan', 'hip', 'metal'] as const;

/** Usage texts are a few kilobytes; only this much of one is read, so a runaway binary's output stays cheap to scan. */
export const MAX_USAGE_CHARS = 64 * 1024;

const BACKEND_LIST = /((?:auto|cpu|cuda|sycl|vulkan|hip|metal)(?:\|(?:auto|cpu|cuda|sycl|vulkan|hip|metal))+)/gi;

/** The list after the first `--backend` of a line, line by line (one pass; no pattern over the whole text). */
function selectorList(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const option = /--backend\b/i.exec(line);
    if (!option) continue;
    BACKEND_LIST.lastIndex = option.index + option[0].length;
    const list = BACKEND_LIST.exec(line);
    if (list) return list[1];
  }
  return undefined;
}

export function parseCliUsage(text: string): CliUsage {
  const head = text.slice(0, MAX_USAGE_CHARS);
  // leading blanks of the option's own line only: `^\s*` would rescan every following blank line
  const options = [...new Set([...head.matchAll(/^[^\S\n\r\u2028\u2029]*--([a-z][a-z0-9_-]*)/gim)].map((m) => (m[1] as string).toLowerCase()))];
  const advertised = new Set<string>();
  for (const o of options) {
    const m = /^no_(cuda|sycl|vulkan|hip|metal)$/.exec(o);
    if (m) advertised.add(m[1] as string);
  }
  const selector = selectorList(head);
  if (selector) for (const b of selector.split('|')) if (b !== 'auto' && b !== 'cpu') advertised.add(b);
  return { text, options, advertised: GPU_BACKENDS.filter((b) => advertised.has(b)) };
}

/** The real CLIs have no --help: they print "unrecognized option", the usage text, and exit 1. */
export async function readCliUsage(binary: string, deps: Pick<ScorerDeps, 'exec' | 'env'>): Promise<CliUsage> {
  const r = await deps.exec(binary, ['--help'], { env: deps.env, timeoutMs: 20_000 }).catch((err: unknown) => {
    throw new StepError('GATE_SCORER_MISSING', `cannot run the vmaf CLI ${binary}: ${(err as Error).message}`, {
      hint: 'set gates.golden.scorers[].binary (or --vmaf-bin) to an executable vmaf-compatible CLI',
      cause: err,
    });
  });
  return parseCliUsage(`${r.stdout}\n${r.stderr}`);
}

function pairArgs(check: GoldenCheck, fixturesDir: string): string[] {
  const p = check.pair;
  const reference = path.join(fixturesDir, p.reference);
  const distorted = check.compute.distortedIsReference ? reference : path.join(fixturesDir, p.distorted);
  return ['-r', reference, '-d', distorted, '-w', String(p.width), '-h', String(p.height), '-p', p.chroma, '-b', String(p.bitDepth)];
}

/** The vmaf CLI arguments of a check (before -o): `--model <arg>` or `--no_prediction --feature <arg>`. */
export function vmafCliArgs(check: GoldenCheck, fixturesDir: string, backend = 'cpu'): string[] {
  const args = pairArgs(check, fixturesDir);
  if (check.compute.kind === 'vmaf') args.push('--model', check.compute.modelArg);
  else args.push('--no_prediction', '--feature', check.compute.featureArg);
  if (backend !== 'cpu') args.push('--backend', backend);
  return args;
}

/** `pooled_metrics.<metric>.mean` of a vmaf `--json` log. */
export function pooledMean(text: string, metric: string, source: string): number {
  let doc: { pooled_metrics?: Record<string, { mean?: unknown } | null> } | null;
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (err) {
    throw new StepError('GATE_SCORER_OUTPUT', `${source} is not JSON: ${(err as Error).message}`, { hint: 'the scorer must be a vmaf-compatible CLI run with --json -o FILE', cause: err });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new StepError('GATE_SCORER_OUTPUT', `${source} is JSON, but not an object with pooled_metrics`, { hint: 'the scorer must be a vmaf-compatible CLI run with --json -o FILE' });
  }
  const mean = Object.hasOwn(doc.pooled_metrics ?? {}, metric) ? doc.pooled_metrics?.[metric]?.mean : undefined;
  if (typeof mean !== 'number' || !Number.isFinite(mean)) {
    throw new StepError('GATE_SCORER_OUTPUT', `${source} has no pooled_metrics.${metric}.mean (it has: ${Object.keys(doc.pooled_metrics ?? {}).join(', ') || 'nothing'})`, {
      hint: 'the scorer did not compute this metric; check its feature and model support',
    });
  }
  return mean;
}

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gate-golden-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runToFile(deps: ScorerDeps, binary: string, makeArgs: (out: string) => string[], what: string): Promise<string> {
  return withTemp(async (dir) => {
    const out = path.join(dir, 'out.json');
    const r = await deps.exec(binary, makeArgs(out), { cwd: deps.fixturesDir, env: deps.env, timeoutMs: deps.timeoutMs ?? 600_000 });
    if (r.exitCode !== 0) {
      throw new StepError('GATE_SCORER_FAILED', `${what}: ${path.basename(binary)} ${r.timedOut ? 'timed out' : `exited with status ${r.exitCode}`}: ${tailLines(r.stderr || r.stdout, 3).join(' | ') || 'no output'}`, {
        hint: "the message above is the scorer's own; check that it supports the model or feature of this check",
      });
    }
    return readFile(out, 'utf8').catch(() => {
      throw new StepError('GATE_SCORER_OUTPUT', `${what}: ${path.basename(binary)} exited 0 but wrote no log`, { hint: 'the scorer must write its log to the file it is given' });
    });
  });
}

/** The vmaf CLI (or a compatible one): `--model <arg>` for VMAF checks, `--no_prediction --feature <arg>` for features. */
export async function vmafCliScorer(binary: string, deps: ScorerDeps, usage?: CliUsage): Promise<GateScorer & { usage: CliUsage }> {
  const u = usage ?? (await readCliUsage(binary, deps));
  const has = (o: string): boolean => u.options.includes(o);
  const scorer: GateScorer & { usage: CliUsage } = {
    name: 'vmaf-cli',
    binary,
    usage: u,
    selectsBackend: has('backend'),
    applicable(check) {
      if (check.compute.kind === 'vmaf') return has('model') ? undefined : 'this CLI has no --model option (its usage text lists none), so it cannot compute VMAF';
      if (!has('feature')) return 'this CLI has no --feature option';
      if (!has('no_prediction')) return 'this CLI has no --no_prediction option';
      return undefined;
    },
    async score(check, backend) {
      const text = await runToFile(deps, binary, (out) => [...vmafCliArgs(check, deps.fixturesDir, backend), '--json', '-o', out, '-q'], `${check.id} on ${backend}`);
      // pooledMean first: it refuses a log that is not a JSON object with a coded error
      const mean = pooledMean(text, check.metric, `${path.basename(binary)} --json log of ${check.id}`);
      if (!scorer.version) {
        const v = (JSON.parse(text) as { version?: unknown }).version;
        if (typeof v === 'string') scorer.version = v;
      }
      return mean;
    },
  };
  return scorer;
}

/** Models the libvmaf 1.x .pkl in the table stands for (float VMAF v0.6.1). */
const LIBVMAF1_MODELS = ['vmaf_v0.6.1', 'vmaf_float_v0.6.1'];

/** ffmpeg's libvmaf filter (libvmaf 1.x) with the table's .pkl model; distorted first, as ffmpeg expects. CPU only. */
export function ffmpegScorer(binary: string, deps: ScorerDeps, table: Pick<GoldenTable, 'libvmaf1Model'>): GateScorer {
  const model = path.join(deps.fixturesDir, table.libvmaf1Model);
  const scorer: GateScorer = {
    name: 'ffmpeg',
    binary,
    selectsBackend: false,
    note: `libvmaf 1.x filter with ${table.libvmaf1Model}; >8-bit input is passed natively`,
    applicable(check) {
      if (check.compute.kind !== 'vmaf') return `the ffmpeg scorer computes VMAF only; ${check.metric} is not an output of the libvmaf 1.x filter this gate uses`;
      if (!LIBVMAF1_MODELS.includes(check.compute.model)) return `the ffmpeg scorer has only the libvmaf 1.x model ${table.libvmaf1Model}; there is no .pkl for ${check.compute.model}`;
      if (check.compute.modelOptions.length) return `the libvmaf 1.x filter has no model options (${check.compute.modelOptions.join(', ')})`;
      return undefined;
    },
    async score(check) {
      for (const p of [model, deps.fixturesDir]) {
        if (/[':\\[\];,]/.test(p)) throw new StepError('GATE_PATH_UNSUPPORTED', `the path ${p} has a character that ffmpeg's filter syntax would misread`, { hint: 'move the fixture folder to a plain path' });
      }
      const p = check.pair;
      const reference = path.join(deps.fixturesDir, p.reference);
      const distorted = check.compute.distortedIsReference ? reference : path.join(deps.fixturesDir, p.distorted);
      const input = (file: string): string[] => ['-f', 'rawvideo', '-pix_fmt', p.pixelFormat, '-s', `${p.width}x${p.height}`, '-i', file];
      const text = await runToFile(
        deps,
        binary,
        (out) => ['-hide_banner', '-nostats', '-nostdin', ...input(distorted), ...input(reference), '-lavfi', `[0:v]null[main];[1:v]null[ref];[main][ref]libvmaf=model_path=${model}:log_fmt=json:log_path=${out}`, '-f', 'null', '-'],
        `${check.id} with ffmpeg`,
      );
      let doc: { version?: unknown; frames?: Array<{ metrics?: Record<string, unknown> }> };
      try {
        doc = JSON.parse(text) as typeof doc;
      } catch (err) {
        throw new StepError('GATE_SCORER_OUTPUT', `ffmpeg's libvmaf log of ${check.id} is not JSON`, { hint: 'the ffmpeg must have the libvmaf filter (libvmaf 1.x, log_fmt=json)', cause: err });
      }
      const values = (doc.frames ?? []).map((f) => f.metrics?.vmaf).filter((v): v is number => typeof v === 'number');
      if (!values.length) throw new StepError('GATE_SCORER_OUTPUT', `ffmpeg's libvmaf log of ${check.id} has no per-frame vmaf`, { hint: 'check the geometry and pixel format of the pair' });
      if (!scorer.version && typeof doc.version === 'string') scorer.version = `libvmaf ${doc.version}`;
      return values.reduce((a, b) => a + b, 0) / values.length;
    },
  };
  return scorer;
}

export interface McpScorerInput {
  /** The packed server (.tgz). */
  tarball: string;
  /** The vmaf-compatible CLI the server scores with (VMAF_BIN). */
  vmafBin: string;
  /** Its usage, to know which checks the server can compute through it. */
  usage: CliUsage;
  /** Folder put on LD_LIBRARY_PATH. */
  libDir?: string;
  log?: (line: string) => void;
}

type ScoreToolResult = { isError?: boolean; content: Array<{ text?: string }>; structuredContent?: { metrics?: Record<string, { mean?: number }> } };

/**
 * The packed MCP server: installed from its tarball into an empty project (as smoke-mcp does),
 * started over stdio with the SDK client, and asked `vmaf_score` for each check. The published
 * bytes, not the workspace source, give the numbers. CPU only.
 */
export async function mcpScorer(input: McpScorerInput, deps: ScorerDeps): Promise<GateScorer> {
  const server = await startPackedServer({
    tarball: input.tarball,
    vmafBin: input.vmafBin,
    ...(input.libDir ? { libDir: input.libDir } : {}),
    args: [deps.fixturesDir],
    exec: deps.exec,
    env: deps.env,
    clientName: 'mcp-release-gate-golden',
    codePrefix: 'GATE_MCP',
    ...(input.log ? { log: input.log } : {}),
  });
  const { pkg, close } = server;
  const connected = server.client;
  const has = (o: string): boolean => input.usage.options.includes(o);
  return {
    name: 'mcp',
    binary: path.basename(input.tarball),
    version: `${pkg.name}@${pkg.version}`,
    note: `scores through ${path.basename(input.vmafBin)}`,
    selectsBackend: false,
    applicable(check) {
      if (check.compute.kind === 'vmaf') {
        if (!has('model')) return `the server's CLI (${path.basename(input.vmafBin)}) has no --model option, so it cannot compute VMAF`;
        if (check.compute.modelOptions.length) return `vmaf_score takes a model file or version only, not model options (${check.compute.modelOptions.join(', ')})`;
        return undefined;
      }
      return has('feature') && has('no_prediction') ? undefined : `the server's CLI (${path.basename(input.vmafBin)}) has no --feature/--no_prediction`;
    },
    async score(check) {
      const p = check.pair;
      const args = {
        reference: p.reference,
        distorted: check.compute.distortedIsReference ? p.reference : p.distorted,
        width: p.width,
        height: p.height,
        pixel_format: p.chroma,
        bit_depth: p.bitDepth,
        ...(check.compute.kind === 'vmaf' ? { model: check.compute.modelFile, features: [] } : { model: 'none', features: [check.compute.featureArg] }),
      };
      const result = (await connected.callTool({ name: 'vmaf_score', arguments: args })) as ScoreToolResult;
      if (result.isError) {
        throw new StepError('GATE_SCORER_FAILED', `vmaf_score for ${check.id} returned an error: ${result.content.map((c) => c.text).join(' ')}`, { hint: 'the packed server could not score this check; the message is its own' });
      }
      const mean = result.structuredContent?.metrics?.[check.metric]?.mean;
      if (typeof mean !== 'number') {
        throw new StepError('GATE_SCORER_OUTPUT', `vmaf_score for ${check.id} returned no ${check.metric} (it returned: ${Object.keys(result.structuredContent?.metrics ?? {}).join(', ') || 'nothing'})`, {
          hint: 'the packed server dropped the metric: check its output schema',
        });
      }
      return mean;
    },
    close,
  };
}
