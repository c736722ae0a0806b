/**
 * Property tests of the golden gate's readers of what a vmaf CLI prints: the usage text
 * (parseCliUsage) and the pooled mean of a --json log (pooledMean). Any text gives a result that
 * keeps their promises, or the coded GATE_SCORER_OUTPUT; never a TypeError or a hang.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SHARED_FIXTURES } from '../../../../test/helpers/tmp.js';
import { hostileValue, mutatedJson, mutatedText, resultOrCoded } from '../../../../test/hostile/fuzz.js';
import { GPU_BACKENDS, MAX_USAGE_CHARS, parseCliUsage, pooledMean } from './scorers.js';

const OUT = path.join(SHARED_FIXTURES, 'cli-output');
const real = readFileSync(path.join(OUT, 'lusoris-vmaf-3.0.0-cpu', 'q160x90_v061.json'), 'utf8');
const realDoc = JSON.parse(real) as { pooled_metrics: Record<string, { mean: number }> };
const usage = readFileSync(path.join(OUT, 'lusoris-vmaf-3.0.0-cpu', 'usage.txt'), 'utf8');

/** The option names an independent reading finds: each line, blanks skipped, `--name` at its start. */
function optionsByLine(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.slice(0, MAX_USAGE_CHARS).split(/\r\n|[\n\r\u2028\u2029]/)) {
    const m = /^--([a-z][a-z0-9_-]*)/i.exec(line.replace(/^\s+/, ''));
    if (m) out.add((m[1] as string).toLowerCase());
  }
  return [...out];
}

describe('vmaf CLI usage text (property tests)', () => {
  it('options are exactly the --names that start a line; advertised backends are GPU backends', () => {
    const words = ['--', '--backend', '--no_hip', '--no_metal', '--model', ' ', '\t', '\n', '\r', '\u2029', ' auto|cpu|vulkan', '|hip', 'x', ':', '\u00a0'];
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: fc.constantFrom(...words), maxLength: 40 }), mutatedText(usage, ['\n', ' ', '-', '|', 'x']), fc.string({ maxLength: 80 })), (text) => {
        const u = parseCliUsage(text);
        expect(u.text).toBe(text);
        expect(u.options).toEqual(optionsByLine(text));
        for (const b of u.advertised) expect(GPU_BACKENDS).toContain(b);
      }),
      { numRuns: 1500 },
    );
  });

  it('hostile shapes that make a whole-text pattern quadratic finish with the right answer', () => {
    expect(parseCliUsage(`${' \n'.repeat(2 * 1024 * 1024)}--model`).options).toEqual([]);
    expect(parseCliUsage('--backend '.repeat(400_000)).advertised).toEqual([]);
    expect(parseCliUsage(`--backend ${'--backend '.repeat(400_000)}cuda|sycl`).advertised).toEqual([]);
    expect(parseCliUsage(` --backend $name: auto|cpu|cuda|sycl\n${'\n'.repeat(1024 * 1024)}`)).toMatchObject({ options: ['backend'], advertised: ['cuda', 'sycl'] });
  });
});

describe('pooled mean of a --json log (property tests)', () => {
  it('the mean as written, or GATE_SCORER_OUTPUT', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedJson(realDoc, 4).map((d) => JSON.stringify(d) ?? ''), mutatedText(real), hostileValue.map((v) => JSON.stringify(v) ?? ''), fc.string({ maxLength: 40 })), fc.constantFrom('vmaf', 'psnr_y', '__proto__', 'constructor'), (text, metric) => {
        const mean = resultOrCoded(() => pooledMean(text, metric, 'fuzz.json'), /^GATE_SCORER_OUTPUT$/);
        if (mean === undefined) return;
        expect(Number.isFinite(mean)).toBe(true);
        expect(mean).toBe((JSON.parse(text) as typeof realDoc).pooled_metrics[metric]?.mean);
      }),
      { numRuns: 1000 },
    );
  });
});
