import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { Allowlist } from './allowlist.js';
import { describe, VmafMcpError } from './errors.js';
import { builtinModels, KNOWN_BUILTIN_MODELS, listBackends, modelFiles } from './probe.js';
import { checkGeometry, findBinary, runFfmpeg, runVmafCli, type ModelChoice, type RawScore, type ScoreRequest, type ScorerName } from './scorers.js';
import { BACKENDS, type Backend } from './usage.js';

export interface ServerConfig {
  /** Folders the server may read (its arguments). */
  roots: string[];
  /** Model folders (--models); readable too. */
  modelFolders: string[];
  env: NodeJS.ProcessEnv;
}

/** name and version come from the package's own package.json, read at run time. */
export async function packageInfo(): Promise<{ name: string; version: string }> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

const pooled = z.object({ mean: z.number(), min: z.number(), max: z.number(), harmonic_mean: z.number().optional() });

const scoreInput = {
  reference: z.string().min(1).describe('Reference (original) raw YUV file; relative paths resolve against the first allowed folder'),
  distorted: z.string().min(1).describe('Distorted raw YUV file, same geometry and length as the reference'),
  width: z.number().int().min(1).max(16384),
  height: z.number().int().min(1).max(16384),
  pixel_format: z.enum(['420', '422', '444']).default('420').describe('Chroma subsampling of the planar YUV'),
  bit_depth: z.union([z.literal(8), z.literal(10), z.literal(12), z.literal(16)]).default(8).describe('Bits per sample; >8-bit files are 16-bit little-endian'),
  model: z
    .string()
    .min(1)
    .optional()
    .describe('A built-in version (e.g. vmaf_v0.6.1), a model file (.json for the vmaf CLI, .pkl for ffmpeg), or "none" to compute features only. Default: the CLI default'),
  features: z.array(z.string().regex(/^[a-z0-9_]+$/)).max(16).default([]).describe('Extra features, passed as --feature (e.g. psnr, float_psnr)'),
  backend: z.enum(BACKENDS).optional().describe('Scoring backend; refused unless list_backends proves it is available'),
  frame_limit: z.number().int().min(1).max(1_000_000).optional().describe('Score at most this many frames'),
  scorer: z.enum(['vmaf', 'ffmpeg']).default('vmaf').describe('vmaf: the vmaf CLI (VMAF_BIN or PATH); ffmpeg: the libvmaf filter (FFMPEG_BIN or PATH)'),
};

const scoreOutput = {
  scorer: z.enum(['vmaf', 'ffmpeg']),
  binary: z.string(),
  scorer_version: z.string().optional(),
  model: z.string().nullable(),
  backend: z.object({ requested: z.string().nullable(), ran: z.string(), evidence: z.string() }),
  frames: z.number().int(),
  metrics: z.record(z.string(), pooled),
  per_frame: z.array(z.object({ frame: z.number().int(), metrics: z.record(z.string(), z.number()) })).optional(),
  seconds: z.number(),
};

type ScoreArgs = z.infer<z.ZodObject<typeof scoreInput>>;

function ok(structured: Record<string, unknown>, text: string): { content: Array<{ type: 'text'; text: string }>; structuredContent: Record<string, unknown> } {
  return { content: [{ type: 'text', text }], structuredContent: structured };
}

type ToolResult = { content: Array<{ type: 'text'; text: string }>; structuredContent?: Record<string, unknown>; isError?: true };

/** Runs a tool body; any error becomes an MCP error result that says what happened and the fix. */
async function guarded(body: () => Promise<ToolResult>): Promise<ToolResult> {
  try {
    return await body();
  } catch (err) {
    return { content: [{ type: 'text', text: describe(err) }], isError: true };
  }
}

export async function createVmafServer(config: ServerConfig): Promise<McpServer> {
  const info = await packageInfo();
  const allow = await Allowlist.create([...config.roots, ...config.modelFolders], config.env);
  const modelFolders = (await Allowlist.create(config.modelFolders, {})).roots;
  const { env } = config;

  async function resolveModel(model: string | undefined, scorer: ScorerName, binary: string): Promise<{ choice: ModelChoice; label: string | null }> {
    if (model === undefined) return { choice: { kind: 'default' }, label: null };
    if (model === 'none') {
      if (scorer === 'ffmpeg') throw new VmafMcpError('MODEL_REQUIRED', 'the ffmpeg scorer always predicts with a model; "none" is for the vmaf CLI', { hint: 'pass a .pkl model file' });
      return { choice: { kind: 'none' }, label: 'none' };
    }
    const looksLikePath = model.includes('/') || model.includes(path.sep) || /\.(json|pkl)$/.test(model);
    if (looksLikePath) {
      const real = await allow.check(model, 'model file');
      if (scorer === 'ffmpeg' && !real.endsWith('.pkl')) throw new VmafMcpError('MODEL_FORMAT', `${model} is not a libvmaf 1.x .pkl model, which the ffmpeg scorer needs`, { hint: 'use a .pkl model with ffmpeg, or the vmaf scorer for .json models' });
      if (scorer === 'vmaf' && real.endsWith('.pkl')) throw new VmafMcpError('MODEL_FORMAT', `${model} is a libvmaf 1.x .pkl model; the vmaf CLI (libvmaf 2.x/3.x) reads .json models`, { hint: 'use the .json model, or scorer: ffmpeg' });
      return { choice: { kind: 'path', path: real }, label: real };
    }
    const files = await modelFiles(modelFolders);
    const byName = files.find((f) => f.name === model && (scorer === 'ffmpeg' ? f.format === 'libvmaf1-pkl' : f.format === 'libvmaf-json'));
    const builtins = scorer === 'vmaf' ? await builtinModels(binary, env) : [];
    if (builtins.includes(model)) return { choice: { kind: 'version', name: model }, label: `version=${model}` };
    if (byName) return { choice: { kind: 'path', path: byName.path }, label: byName.path };
    const known = [...builtins, ...files.map((f) => f.name)];
    throw new VmafMcpError('UNKNOWN_MODEL', `unknown model ${JSON.stringify(model)} for the ${scorer} scorer`, {
      hint: known.length ? `use one of: ${[...new Set(known)].join(', ')} (see list_models), or a model file path` : 'this scorer has no built-in models and no model folders are configured (start the server with --models DIR), so pass a model file path',
    });
  }

  async function score(args: ScoreArgs): Promise<{ raw: RawScore; result: Record<string, unknown> }> {
    const scorer = args.scorer as ScorerName;
    const binary = await findBinary(scorer, env);
    const reference = await allow.check(args.reference, 'reference file');
    const distorted = await allow.check(args.distorted, 'distorted file');
    const { choice, label } = await resolveModel(args.model, scorer, binary);
    const req: ScoreRequest = {
      reference,
      distorted,
      width: args.width,
      height: args.height,
      pixelFormat: args.pixel_format,
      bitDepth: args.bit_depth,
      model: choice,
      features: args.features,
      ...(args.frame_limit ? { frameLimit: args.frame_limit } : {}),
    };
    const frames = await checkGeometry(req);
    let ran: Backend = 'cpu';
    let evidence = scorer === 'ffmpeg' ? 'ffmpeg libvmaf 1.x runs on the CPU only' : 'no backend requested: the CPU path';
    if (scorer === 'vmaf' && args.backend && args.backend !== 'cpu') {
      const report = (await listBackends(binary, env)).find((b) => b.backend === args.backend);
      if (!report?.available) {
        throw new VmafMcpError('BACKEND_NOT_AVAILABLE', `backend ${args.backend} is not available in ${binary}: ${report?.reason ?? 'unknown'}`, {
          hint: 'omit backend (CPU), or use a vmaf build with that backend compiled in; list_backends shows the evidence',
        });
      }
      req.backend = args.backend;
      ran = args.backend;
      evidence = report.reason;
    } else if (args.backend === 'cpu') {
      evidence = 'backend cpu requested';
    }
    const raw = scorer === 'vmaf' ? await runVmafCli(binary, req, env) : await runFfmpeg(binary, req, env);
    const scoredFrames = raw.parsed.frames.length || Math.min(frames, args.frame_limit ?? frames);
    return {
      raw,
      result: {
        scorer,
        binary,
        ...(raw.parsed.version ? { scorer_version: raw.parsed.version } : {}),
        model: label,
        backend: { requested: args.backend ?? null, ran, evidence },
        frames: scoredFrames,
        metrics: raw.parsed.pooled,
        seconds: Number(raw.seconds.toFixed(6)),
      },
    };
  }

  const server = new McpServer({ name: info.name, version: info.version });

  server.registerTool(
    'vmaf_score',
    {
      title: 'Score video quality (VMAF)',
      description: 'Scores a distorted raw YUV file against its reference with the vmaf CLI or ffmpeg libvmaf. Returns the pooled mean, min and max of every metric, optionally per frame.',
      inputSchema: { ...scoreInput, per_frame: z.boolean().default(false).describe('Also return every frame\'s scores') },
      outputSchema: scoreOutput,
    },
    async (args) =>
      guarded(async () => {
        const { raw, result } = await score(args);
        if (args.per_frame) result.per_frame = raw.parsed.frames;
        const metrics = raw.parsed.pooled;
        const lines = Object.entries(metrics).map(([k, v]) => `${k}: mean ${v.mean.toFixed(6)} (min ${v.min.toFixed(6)}, max ${v.max.toFixed(6)})`);
        return ok(result, `${result.frames} frame(s) scored by ${args.scorer} on ${(result.backend as { ran: string }).ran}\n${lines.join('\n')}`);
      }),
  );

  server.registerTool(
    'list_models',
    {
      title: 'List VMAF models',
      description: 'Lists the model files in the configured model folders and the built-in model versions the vmaf CLI really has (each proven by a one-frame run).',
      inputSchema: {},
      outputSchema: {
        builtin: z.array(z.string()),
        builtin_note: z.string(),
        files: z.array(z.object({ name: z.string(), path: z.string(), format: z.enum(['libvmaf-json', 'libvmaf1-pkl']), size: z.number().int() })),
        folders: z.array(z.string()),
      },
    },
    async () =>
      guarded(async () => {
        const files = await modelFiles(modelFolders);
        let builtin: string[] = [];
        let note: string;
        try {
          const binary = await findBinary('vmaf', env);
          builtin = await builtinModels(binary, env);
          note = `probed ${binary} for ${KNOWN_BUILTIN_MODELS.length} known libvmaf built-in versions: ${builtin.length} present`;
        } catch (err) {
          note = `no built-in models listed: ${describe(err)}`;
        }
        const structured = { builtin, builtin_note: note, files, folders: modelFolders };
        return ok(structured, [`built-in: ${builtin.join(', ') || '(none)'}`, ...files.map((f) => `${f.name} (${f.format}): ${f.path}`)].join('\n'));
      }),
  );

  server.registerTool(
    'list_backends',
    {
      title: 'List scoring backends',
      description: 'Which backends (cpu, cuda, sycl, vulkan, hip, metal) really work with the configured vmaf CLI, with the evidence for each: advertised in the usage text, linked libraries, or observed in a one-frame run. The usage text alone never counts.',
      inputSchema: {},
      outputSchema: {
        binary: z.string(),
        backends: z.array(
          z.object({
            backend: z.enum(BACKENDS),
            available: z.boolean(),
            evidence: z.object({ advertised: z.boolean(), linked: z.array(z.string()), observed: z.string().nullable() }),
            reason: z.string(),
          }),
        ),
      },
    },
    async () =>
      guarded(async () => {
        const binary = await findBinary('vmaf', env);
        const backends = await listBackends(binary, env);
        return ok({ binary, backends }, backends.map((b) => `${b.backend}: ${b.available ? 'available' : 'not available'} (${b.reason})`).join('\n'));
      }),
  );

  server.registerTool(
    'vmaf_benchmark',
    {
      title: 'Benchmark scoring speed',
      description: 'Scores the same pair `repeat` times (at most 10) and reports frames per second for each run and their median.',
      inputSchema: { ...scoreInput, repeat: z.number().int().min(1).max(10).default(3).describe('Number of runs, 1 to 10') },
      outputSchema: {
        frames: z.number().int(),
        runs: z.array(z.object({ seconds: z.number(), fps: z.number() })),
        median_fps: z.number(),
        min_fps: z.number(),
        max_fps: z.number(),
        scorer: z.enum(['vmaf', 'ffmpeg']),
        backend: z.string(),
      },
    },
    async (args) =>
      guarded(async () => {
        const runs: Array<{ seconds: number; fps: number }> = [];
        let frames = 0;
        let backend = 'cpu';
        for (let i = 0; i < args.repeat; i += 1) {
          const { raw, result } = await score(args);
          frames = result.frames as number;
          backend = (result.backend as { ran: string }).ran;
          runs.push({ seconds: raw.seconds, fps: frames / raw.seconds });
        }
        const fps = runs.map((r) => r.fps).sort((a, b) => a - b);
        const mid = fps.length / 2;
        const median = fps.length % 2 ? (fps[Math.floor(mid)] as number) : ((fps[mid - 1] as number) + (fps[mid] as number)) / 2;
        const structured = { frames, runs, median_fps: median, min_fps: fps[0] as number, max_fps: fps[fps.length - 1] as number, scorer: args.scorer, backend };
        return ok(structured, `${args.repeat} run(s) of ${frames} frame(s): median ${median.toFixed(1)} fps (min ${structured.min_fps.toFixed(1)}, max ${structured.max_fps.toFixed(1)})`);
      }),
  );

  return server;
}
