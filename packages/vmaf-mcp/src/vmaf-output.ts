import { VmafMcpError } from './errors.js';

export interface Pooled {
  mean: number;
  min: number;
  max: number;
  harmonic_mean?: number;
}

export interface FrameScores {
  frame: number;
  metrics: Record<string, number>;
}

export interface ParsedScores {
  version?: string;
  frames: FrameScores[];
  pooled: Record<string, Pooled>;
}

const FORMAT_HINT = 'the output is not in the libvmaf 2.x/3.x --json format; check that the binary is the vmaf CLI and run it by hand with --json to see what it writes';
const FFMPEG_HINT = "the log is not ffmpeg's libvmaf log_fmt=json output; check the ffmpeg command line (log_path and log_fmt=json)";

/** Sets an own property, whatever its name (`__proto__` included: a metric may be called anything). */
function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function frames(value: unknown, source: string): FrameScores[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new VmafMcpError('VMAF_OUTPUT_INVALID', `${source}: "frames" is not a list`, { hint: FORMAT_HINT });
  return value.map((f, i) => {
    if (!isRecord(f) || !isRecord(f.metrics)) throw new VmafMcpError('VMAF_OUTPUT_INVALID', `${source}: frames[${i}] has no metrics`, { hint: FORMAT_HINT });
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(f.metrics)) if (typeof v === 'number' && Number.isFinite(v)) setOwn(metrics, k, v);
    return { frame: typeof f.frameNum === 'number' ? f.frameNum : i, metrics };
  });
}

/** Parses the vmaf CLI's `--json` output (libvmaf 2.x/3.x): `frames[].metrics` and `pooled_metrics`. */
export function parseVmafJson(text: string, source = 'vmaf output'): ParsedScores {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new VmafMcpError('VMAF_OUTPUT_INVALID', `${source} is not JSON: ${(err as Error).message}`, {
      cause: err,
      hint: 'check that the binary is the vmaf CLI and that it was run with --json',
    });
  }
  if (!isRecord(doc)) throw new VmafMcpError('VMAF_OUTPUT_INVALID', `${source} is not a JSON object`, { hint: FORMAT_HINT });
  const pooledRaw = doc.pooled_metrics;
  if (!isRecord(pooledRaw) || Object.keys(pooledRaw).length === 0) {
    throw new VmafMcpError('VMAF_OUTPUT_NO_POOLED', `${source} has no pooled_metrics: the CLI reported no scores`, {
      hint: 'the input may have no frames, or the CLI is not a libvmaf 2.x/3.x vmaf tool; run it by hand with --json to see its output',
    });
  }
  const pooled: Record<string, Pooled> = {};
  for (const [name, v] of Object.entries(pooledRaw)) {
    if (!isRecord(v) || typeof v.mean !== 'number' || typeof v.min !== 'number' || typeof v.max !== 'number') {
      throw new VmafMcpError('VMAF_OUTPUT_INVALID', `${source}: pooled_metrics.${name} lacks mean/min/max`, { hint: FORMAT_HINT });
    }
    setOwn(pooled, name, { mean: v.mean, min: v.min, max: v.max, ...(typeof v.harmonic_mean === 'number' ? { harmonic_mean: v.harmonic_mean } : {}) });
  }
  return { ...(typeof doc.version === 'string' ? { version: doc.version } : {}), frames: frames(doc.frames, source), pooled };
}

/** Pools per-frame values the way libvmaf does for `mean`, `min`, `max` and `harmonic_mean`. */
export function pool(list: FrameScores[]): Record<string, Pooled> {
  const names = new Set(list.flatMap((f) => Object.keys(f.metrics)));
  const out: Record<string, Pooled> = {};
  for (const name of [...names].sort()) {
    const values = list.map((f) => (Object.hasOwn(f.metrics, name) ? f.metrics[name] : undefined)).filter((v): v is number => typeof v === 'number');
    if (!values.length) continue;
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const harmonic = values.length / values.reduce((a, v) => a + 1 / (v + 1), 0) - 1;
    // a loop, not Math.min(...values): spreading a long video's frames overflows the call stack
    const min = values.reduce((a, v) => (v < a ? v : a), Infinity);
    const max = values.reduce((a, v) => (v > a ? v : a), -Infinity);
    setOwn(out, name, { mean, min, max, harmonic_mean: harmonic });
  }
  return out;
}

/** Parses ffmpeg's libvmaf 1.x JSON log (`log_fmt=json`): per-frame metrics only, pooled here. */
export function parseFfmpegLibvmafLog(text: string, source = 'ffmpeg libvmaf log'): ParsedScores {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new VmafMcpError('VMAF_OUTPUT_INVALID', `${source} is not JSON: ${(err as Error).message}`, { cause: err, hint: FFMPEG_HINT });
  }
  if (!isRecord(doc)) throw new VmafMcpError('VMAF_OUTPUT_INVALID', `${source} is not a JSON object`, { hint: FFMPEG_HINT });
  const list = frames(doc.frames, source);
  if (!list.length) {
    throw new VmafMcpError('VMAF_OUTPUT_NO_POOLED', `${source} has no frames: ffmpeg scored nothing`, { hint: 'check the geometry and pixel format of the inputs' });
  }
  return { ...(typeof doc.version === 'string' ? { version: doc.version } : {}), frames: list, pooled: pool(list) };
}
