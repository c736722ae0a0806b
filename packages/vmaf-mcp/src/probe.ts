import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exec } from '@mcp-release/pipeline/exec';
import { runVmafCli, type ScoreRequest } from './scorers.js';
import { BACKEND_LIBRARIES, BACKENDS, parseLdd, parseUsage, type Backend, type UsageInfo } from './usage.js';

export interface BackendReport {
  backend: Backend;
  available: boolean;
  evidence: {
    /** The usage text mentions it. Never enough on its own. */
    advertised: boolean;
    /** Shared libraries that `ldd` shows for it. */
    linked: string[];
    /** What a one-frame run with this backend printed that names it, or why it proves nothing. */
    observed: string | null;
  };
  reason: string;
}

/** libvmaf 3.x built-in model versions (present when built with built_in_models=true). */
export const KNOWN_BUILTIN_MODELS = [
  'vmaf_v0.6.1',
  'vmaf_v0.6.1neg',
  'vmaf_4k_v0.6.1',
  'vmaf_4k_v0.6.1neg',
  'vmaf_float_v0.6.1',
  'vmaf_float_v0.6.1neg',
  'vmaf_float_4k_v0.6.1',
  'vmaf_b_v0.6.3',
  'vmaf_float_b_v0.6.3',
] as const;

interface BinaryFacts {
  usage: UsageInfo;
  usageText: string;
  backends?: BackendReport[];
  builtinModels?: string[];
}

const cache = new Map<string, BinaryFacts>();

async function cacheKey(binary: string): Promise<string> {
  const st = await stat(binary);
  return `${binary}\0${st.size}\0${st.mtimeMs}`;
}

/** The usage text: the real CLIs print it after "unrecognized option" for --help, exiting 1. */
async function facts(binary: string, env: NodeJS.ProcessEnv): Promise<BinaryFacts> {
  const key = await cacheKey(binary);
  const known = cache.get(key);
  if (known) return known;
  const r = await exec(binary, ['--help'], { env, timeoutMs: 20_000 });
  const usageText = `${r.stdout}\n${r.stderr}`;
  const f: BinaryFacts = { usage: parseUsage(usageText), usageText };
  cache.set(key, f);
  return f;
}

/** A tiny probe pair: one 176x144 8-bit frame, the distorted one slightly different. */
async function withProbePair<T>(fn: (req: Pick<ScoreRequest, 'reference' | 'distorted' | 'width' | 'height' | 'pixelFormat' | 'bitDepth'>) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vmaf-mcp-probe-'));
  try {
    const w = 176;
    const h = 144;
    const ref = Buffer.alloc(w * h * 1.5);
    for (let i = 0; i < ref.length; i += 1) ref[i] = (i * 7 + ((i / w) | 0) * 3) & 0xff;
    const dis = Buffer.from(ref);
    for (let i = 0; i < dis.length; i += 13) dis[i] = (dis[i] as number) ^ 0x08;
    await writeFile(path.join(dir, 'ref.yuv'), ref);
    await writeFile(path.join(dir, 'dis.yuv'), dis);
    return await fn({ reference: path.join(dir, 'ref.yuv'), distorted: path.join(dir, 'dis.yuv'), width: w, height: h, pixelFormat: '420', bitDepth: 8 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Which backends really work, with the evidence for each. The usage text only advertises; a GPU
 * backend counts as available when its libraries are linked or a one-frame run with it names it
 * on stderr. A CPU-only build that accepts `--backend cuda` and prints CPU scores proves nothing.
 */
export async function listBackends(binary: string, env: NodeJS.ProcessEnv): Promise<BackendReport[]> {
  const f = await facts(binary, env);
  if (f.backends) return f.backends;
  const ldd = await exec('ldd', [binary], { env }).catch(() => undefined);
  const libs = ldd && ldd.exitCode === 0 ? parseLdd(ldd.stdout) : [];
  const reports: BackendReport[] = [];
  await withProbePair(async (pair) => {
    for (const backend of BACKENDS) {
      const advertised = backend === 'cpu' || f.usage.advertised.includes(backend);
      const linked = backend === 'cpu' ? [] : libs.filter((l) => BACKEND_LIBRARIES[backend].test(l));
      let observed: string | null = null;
      let ranOk = false;
      if (backend === 'cpu' || (advertised && f.usage.hasBackendSelector)) {
        try {
          const r = await runVmafCli(binary, { ...pair, model: { kind: 'none' }, features: ['psnr'], frameLimit: 1, ...(backend === 'cpu' ? {} : { backend }) }, env);
          ranOk = true;
          const mention = r.stderr.split('\n').find((l) => l.toLowerCase().includes(backend) && !/not|unavailable|disabled|fail|error/i.test(l));
          observed = backend === 'cpu' ? 'a one-frame run succeeded' : (mention ?? null);
        } catch {
          observed = null;
        }
      }
      const available = backend === 'cpu' ? ranOk : linked.length > 0 || observed !== null;
      const reason =
        backend === 'cpu'
          ? ranOk
            ? 'a one-frame run on the CPU succeeded'
            : 'a one-frame run failed: the binary does not score'
          : available
            ? linked.length
              ? `linked against ${linked.join(', ')}`
              : `a one-frame run printed: ${observed}`
            : advertised
              ? 'advertised in the usage text only: not built (no library linked, nothing observed in a one-frame run)'
              : 'not built';
      reports.push({ backend, available, evidence: { advertised, linked, observed }, reason });
    }
  });
  f.backends = reports;
  return reports;
}

/** Built-in model versions this binary really has: each proven by a one-frame run. */
export async function builtinModels(binary: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const f = await facts(binary, env);
  if (f.builtinModels) return f.builtinModels;
  const found: string[] = [];
  if (f.usage.options.includes('model')) {
    await withProbePair(async (pair) => {
      for (const name of KNOWN_BUILTIN_MODELS) {
        const ok = await runVmafCli(binary, { ...pair, model: { kind: 'version', name }, features: [], frameLimit: 1 }, env).then(
          () => true,
          () => false,
        );
        if (ok) found.push(name);
      }
    });
  }
  f.builtinModels = found;
  return found;
}

export interface ModelFile {
  name: string;
  path: string;
  format: 'libvmaf-json' | 'libvmaf1-pkl';
  size: number;
}

/** Model files in the configured folders: libvmaf .json models and libvmaf 1.x .pkl models (with their .pkl.model). */
export async function modelFiles(folders: string[]): Promise<ModelFile[]> {
  const out: ModelFile[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 4 || out.length >= 2000) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    const names = new Set(entries.map((e) => e.name));
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p, depth + 1);
      else if (e.name.endsWith('.json')) out.push({ name: e.name.replace(/\.json$/, ''), path: p, format: 'libvmaf-json', size: (await stat(p)).size });
      else if (e.name.endsWith('.pkl') && names.has(`${e.name}.model`)) out.push({ name: e.name.replace(/\.pkl$/, ''), path: p, format: 'libvmaf1-pkl', size: (await stat(p)).size });
    }
  };
  for (const f of folders) await walk(f, 0);
  return out;
}

/** For tests: forget cached answers. */
export function clearProbeCache(): void {
  cache.clear();
}
