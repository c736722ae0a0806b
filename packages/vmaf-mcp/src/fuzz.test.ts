/**
 * Property tests of the server's parsers: the vmaf CLI's --json output, ffmpeg's libvmaf log and
 * the usage text. Any input gives a result that keeps the parser's promises, or a coded
 * VmafMcpError; never a TypeError, a RangeError or a hang (hostile shapes included).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SHARED_FIXTURES } from '../../../test/helpers/tmp.js';
import { hostileValue, mutatedJson, mutatedText, resultOrCoded } from '../../../test/hostile/fuzz.js';
import { BACKENDS, MAX_USAGE_CHARS, parseUsage } from './usage.js';
import { parseFfmpegLibvmafLog, parseVmafJson, pool } from './vmaf-output.js';

const OUT = path.join(SHARED_FIXTURES, 'cli-output');
const VMAF_CODE = /^VMAF_OUTPUT_[A-Z_]+$/;
const real = readFileSync(path.join(OUT, 'netflix-vmaf-3.2.0', 'akiyo_v061neg.json'), 'utf8');
const realDoc = JSON.parse(real) as unknown;
const usageTexts = ['netflix-vmaf-3.2.0/usage.txt', 'lusoris-vmaf-3.0.0-cpu/usage.txt'].map((f) => readFileSync(path.join(OUT, f), 'utf8'));

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The option names an independent reading finds: each line, blanks skipped, `--name` at its start. */
function optionsByLine(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.slice(0, MAX_USAGE_CHARS).split(/\r\n|[\n\r\u2028\u2029]/)) {
    const m = /^--([a-z][a-z0-9_-]*)/i.exec(line.replace(/^\s+/, ''));
    if (m) out.add((m[1] as string).toLowerCase());
  }
  return [...out];
}

const USAGE_WORDS = ['--', '--backend', '--no_cuda', '--no_sycl', '--model', '--feature', ' ', '\t', '\n', '\r\n', '\u2028', '$name:', ' auto|cpu|cuda', '|metal', 'cpu|', 'x', ':', '\u00a0', '-'];

describe('vmaf --json output (property tests)', () => {
  it('a real output with values replaced, keys deleted and entries duplicated: scores as given, or a coded error', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedJson(realDoc, 4), hostileValue), (doc) => {
        const parsed = resultOrCoded(() => parseVmafJson(JSON.stringify(doc) ?? 'undefined', 'fuzz'), VMAF_CODE);
        if (!parsed || !isRecord(doc)) return;
        expect(Object.keys(parsed.pooled).sort()).toEqual(Object.keys(doc.pooled_metrics as object).sort());
        for (const [name, p] of Object.entries(parsed.pooled)) expect(p.mean).toBe((doc.pooled_metrics as Record<string, { mean: number }>)[name]?.mean);
        expect(parsed.frames).toHaveLength(Array.isArray(doc.frames) ? doc.frames.length : 0);
        for (const f of parsed.frames) for (const v of Object.values(f.metrics)) expect(Number.isFinite(v)).toBe(true);
      }),
      { numRuns: 800 },
    );
  });

  it('damaged text: scores or a coded error', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedText(real), fc.string({ maxLength: 60 })), (text) => {
        resultOrCoded(() => parseVmafJson(text, 'fuzz'), VMAF_CODE);
      }),
      { numRuns: 800 },
    );
  });

  it('ffmpeg logs: pooled min <= mean <= max for every metric, or a coded error', () => {
    const log = { version: '1.3.7', frames: [{ frameNum: 0, metrics: { vmaf: 90, psnr: 30 } }, { frameNum: 1, metrics: { vmaf: 94 } }] };
    fc.assert(
      fc.property(fc.oneof(mutatedJson(log, 4), hostileValue), (doc) => {
        const parsed = resultOrCoded(() => parseFfmpegLibvmafLog(JSON.stringify(doc) ?? '', 'fuzz'), VMAF_CODE);
        for (const p of Object.values(parsed?.pooled ?? {})) {
          expect(p.min).toBeLessThanOrEqual(p.mean + 1e-9);
          expect(p.mean).toBeLessThanOrEqual(p.max + 1e-9);
        }
      }),
      { numRuns: 800 },
    );
  });

  it('pools a long video (300 000 frames) without overflowing the stack', () => {
    const frames = Array.from({ length: 300_000 }, (_, i) => ({ frame: i, metrics: { vmaf: (i * 7919) % 101 } }));
    expect(pool(frames).vmaf).toMatchObject({ min: 0, max: 100 });
    const text = JSON.stringify({ frames: frames.map((f) => ({ frameNum: f.frame, metrics: f.metrics })) });
    expect(parseFfmpegLibvmafLog(text).pooled.vmaf).toMatchObject({ min: 0, max: 100 });
  });
});

describe('usage text (property tests)', () => {
  it('options are exactly the --names that start a line; advertised backends are known ones', () => {
    const texts = fc.oneof(
      fc.string({ unit: fc.constantFrom(...USAGE_WORDS), maxLength: 40 }),
      fc.constantFrom(...usageTexts).chain((t) => mutatedText(t, ['\n', ' ', '-', '|', ':', '$', '\u2028', 'x'])),
      fc.string({ maxLength: 80 }),
    );
    fc.assert(
      fc.property(texts, (text) => {
        const u = parseUsage(text);
        expect(u.options).toEqual(optionsByLine(text));
        for (const b of u.advertised) expect(BACKENDS).toContain(b);
        for (const o of u.options) if (/^no_(cuda|sycl|vulkan|hip|metal)$/.test(o)) expect(u.advertised).toContain(o.slice(3));
        expect(u.hasBackendSelector).toBe(u.options.includes('backend'));
      }),
      { numRuns: 1500 },
    );
  });

  it('hostile shapes that make a whole-text pattern quadratic finish with the right answer', () => {
    const selector = ' --backend $name:              exclusive backend selector — auto|cpu|cuda.\n';
    // blank lines without end, a line of --backend repeated, spaces after --backend: each scanned once
    expect(parseUsage(`${'\n'.repeat(4 * 1024 * 1024)}--model`)).toMatchObject({ options: [], advertised: [] });
    expect(parseUsage(`${selector}${' \n'.repeat(1024 * 1024)}`)).toMatchObject({ options: ['backend'], advertised: ['cpu', 'cuda'] });
    expect(parseUsage(`--backend $name: ${'--backend x: '.repeat(300_000)}`).advertised).toEqual([]);
    expect(parseUsage(`--backend${' '.repeat(1024 * 1024)}cpu|cuda`).advertised).toEqual([]);
    expect(parseUsage(`--backend${' '.repeat(30_000)}$name: cpu|cuda`).advertised).toEqual(['cpu', 'cuda']);
    // only the head of a runaway text is read
    expect(parseUsage(`${'x'.repeat(MAX_USAGE_CHARS)}\n--no_cuda\n`).advertised).toEqual([]);
    expect(parseUsage(`--no_cuda\n${'x'.repeat(MAX_USAGE_CHARS)}`).advertised).toEqual(['cuda']);
  });
});
