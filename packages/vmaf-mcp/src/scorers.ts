import { access, constants, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exec, tailLines, type ExecResult } from '@mcp-release/pipeline/exec';
import { VmafMcpError } from './errors.js';
import type { Backend } from './usage.js';
import { parseFfmpegLibvmafLog, parseVmafJson, type FrameScores, type ParsedScores, type Pooled } from './vmaf-output.js';

export type PixelFormat = '420' | '422' | '444';
export type ScorerName = 'vmaf' | 'ffmpeg';

export type ModelChoice = { kind: 'version'; name: string } | { kind: 'path'; path: string } | { kind: 'none' } | { kind: 'default' };

export interface ScoreRequest {
  reference: string;
  distorted: string;
  width: number;
  height: number;
  pixelFormat: PixelFormat;
  bitDepth: 8 | 10 | 12 | 16;
  model: ModelChoice;
  features: string[];
  backend?: Backend;
  frameLimit?: number;
}

export interface RawScore {
  parsed: ParsedScores;
  stderr: string;
  seconds: number;
}

/** Bytes of one planar YUV frame. */
export function frameBytes(width: number, height: number, pixelFormat: PixelFormat, bitDepth: number): number {
  const cw = pixelFormat === '444' ? width : Math.floor(width / 2);
  const ch = pixelFormat === '420' ? Math.floor(height / 2) : height;
  return (width * height + 2 * cw * ch) * (bitDepth > 8 ? 2 : 1);
}

/** Checks both files against the geometry; returns the frame count. */
export async function checkGeometry(req: ScoreRequest): Promise<number> {
  const size = frameBytes(req.width, req.height, req.pixelFormat, req.bitDepth);
  const counts: number[] = [];
  for (const [what, file] of [['reference', req.reference], ['distorted', req.distorted]] as const) {
    const bytes = (await stat(file)).size;
    if (bytes === 0 || bytes % size !== 0) {
      throw new VmafMcpError(
        'GEOMETRY_MISMATCH',
        `the ${what} file is ${bytes} bytes, which is not a whole number of ${req.width}x${req.height} yuv${req.pixelFormat}p ${req.bitDepth}-bit frames (${size} bytes each)`,
        { hint: 'check width, height, pixel_format and bit_depth against the file (raw planar YUV, no header; >8-bit is 16-bit little-endian)' },
      );
    }
    counts.push(bytes / size);
  }
  if (counts[0] !== counts[1]) {
    throw new VmafMcpError('GEOMETRY_MISMATCH', `the reference has ${counts[0]} frames but the distorted file has ${counts[1]}`, { hint: 'score two files of the same length' });
  }
  return counts[0] as number;
}

/** VMAF_BIN / FFMPEG_BIN, or the program on PATH. */
export async function findBinary(scorer: ScorerName, env: NodeJS.ProcessEnv): Promise<string> {
  const variable = scorer === 'vmaf' ? 'VMAF_BIN' : 'FFMPEG_BIN';
  const configured = env[variable];
  const candidates = configured ? [configured] : (env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, scorer));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      if ((await stat(c)).isFile()) return path.resolve(c);
    } catch {
      // try the next one
    }
  }
  throw new VmafMcpError('BINARY_NOT_FOUND', configured ? `${variable}=${configured} is not an executable file` : `no ${scorer} binary on PATH`, {
    hint: `set ${variable} to the ${scorer === 'vmaf' ? 'vmaf CLI (libvmaf tools/vmaf)' : 'ffmpeg binary (built with --enable-libvmaf)'} in the server's environment, or put it on PATH`,
  });
}

function failure(scorer: string, binary: string, r: ExecResult, timeoutMs: number): VmafMcpError {
  if (r.timedOut) {
    return new VmafMcpError('SCORER_TIMEOUT', `${scorer} did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`, {
      hint: 'score fewer frames (frame_limit) or raise VMAF_MCP_TIMEOUT_MS',
    });
  }
  const why = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.exitCode}`;
  return new VmafMcpError('SCORER_FAILED', `${binary} ${why}: ${tailLines(r.stderr || r.stdout, 3).join(' | ') || 'no output'}`, {
    hint: 'the scorer refused the input or crashed; the message above is its own. Check the model, features and geometry',
  });
}

const PIXFMT: Record<PixelFormat, string> = { '420': 'yuv420p', '422': 'yuv422p', '444': 'yuv444p' };

export function timeoutFrom(env: NodeJS.ProcessEnv): number {
  const n = Number(env.VMAF_MCP_TIMEOUT_MS);
  return Number.isFinite(n) && n > 0 ? n : 10 * 60 * 1000;
}

/**
 * Runs a scorer that writes its scores to a file in a fresh temporary folder, with the time
 * limit, then reads and parses that file; the folder is removed whatever happens.
 */
async function runScorer(
  scorer: ScorerName,
  binary: string,
  args: (outFile: string) => string[],
  parse: (text: string) => ParsedScores,
  noOutputHint: string,
  env: NodeJS.ProcessEnv,
): Promise<RawScore> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vmaf-mcp-'));
  const out = path.join(dir, 'scores.json');
  const timeoutMs = timeoutFrom(env);
  const t0 = process.hrtime.bigint();
  try {
    const r = await exec(binary, args(out), { env, timeoutMs });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.exitCode !== 0) throw failure(scorer, binary, r, timeoutMs);
    const text = await readFile(out, 'utf8').catch(() => {
      throw new VmafMcpError('VMAF_OUTPUT_MISSING', `${binary} exited 0 but wrote no scores`, { hint: noOutputHint });
    });
    return { parsed: parse(text), stderr: r.stderr, seconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the vmaf CLI with --json and parses its output. */
export async function runVmafCli(binary: string, req: ScoreRequest, env: NodeJS.ProcessEnv): Promise<RawScore> {
  const args = ['-r', req.reference, '-d', req.distorted, '-w', String(req.width), '-h', String(req.height), '-p', req.pixelFormat, '-b', String(req.bitDepth)];
  if (req.model.kind === 'version') args.push('--model', `version=${req.model.name}`);
  else if (req.model.kind === 'path') args.push('--model', `path=${req.model.path}`);
  else if (req.model.kind === 'none') args.push('--no_prediction');
  for (const f of req.features) args.push('--feature', f);
  if (req.frameLimit) args.push('--frame_cnt', String(req.frameLimit));
  if (req.backend && req.backend !== 'cpu') args.push('--backend', req.backend);
  return runScorer(
    'vmaf',
    binary,
    (out) => [...args, '--json', '-o', out, '-q'],
    (text) => parseVmafJson(text, `${path.basename(binary)} --json output`),
    'check that the binary is the vmaf CLI (it must support --json -o FILE)',
    env,
  );
}

/** Runs ffmpeg's libvmaf filter (libvmaf 1.x: .pkl models), distorted first as ffmpeg expects. */
export async function runFfmpeg(binary: string, req: ScoreRequest, env: NodeJS.ProcessEnv): Promise<RawScore> {
  if (req.model.kind !== 'path') {
    throw new VmafMcpError('MODEL_REQUIRED', 'the ffmpeg scorer needs a model file (a libvmaf 1.x .pkl, with its .pkl.model beside it)', {
      hint: 'pass model as a path to a .pkl model file',
    });
  }
  if (req.backend && req.backend !== 'cpu') {
    throw new VmafMcpError('BACKEND_NOT_AVAILABLE', `the ffmpeg scorer (libvmaf 1.x) runs on the CPU only; backend ${req.backend} is not available`, { hint: 'omit backend or use the vmaf scorer' });
  }
  const options = [`model_path=${req.model.path}`, 'log_fmt=json'];
  for (const f of req.features) {
    if (!['psnr', 'ssim', 'ms_ssim'].includes(f)) {
      throw new VmafMcpError('FEATURE_NOT_SUPPORTED', `the ffmpeg scorer cannot compute the feature ${JSON.stringify(f)}`, { hint: 'ffmpeg libvmaf 1.x supports psnr, ssim and ms_ssim' });
    }
    options.push(`${f}=1`);
  }
  for (const p of [req.model.path, req.reference, req.distorted]) {
    if (/[':\\[\];,]/.test(p)) {
      throw new VmafMcpError('PATH_NOT_SUPPORTED', `the path ${p} has a character that ffmpeg's filter syntax would misread`, { hint: 'rename the file or folder, or use the vmaf scorer' });
    }
  }
  const pixfmt = `${PIXFMT[req.pixelFormat]}${req.bitDepth > 8 ? `${req.bitDepth}le` : ''}`;
  const input = (file: string): string[] => ['-f', 'rawvideo', '-pix_fmt', pixfmt, '-s', `${req.width}x${req.height}`, '-i', file];
  const args = (log: string): string[] => [
    '-hide_banner',
    '-nostats',
    '-nostdin',
    ...input(req.distorted),
    ...input(req.reference),
    '-lavfi',
    `[0:v]null[main];[1:v]null[ref];[main][ref]libvmaf=${[...options, `log_path=${log}`].join(':')}`,
    ...(req.frameLimit ? ['-frames:v', String(req.frameLimit)] : []),
    '-f',
    'null',
    '-',
  ];
  return runScorer('ffmpeg', binary, args, (text) => parseFfmpegLibvmafLog(text), 'check that this ffmpeg was built with --enable-libvmaf (ffmpeg -filters | grep libvmaf)', env);
}

export type { FrameScores, Pooled };
