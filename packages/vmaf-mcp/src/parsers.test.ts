import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHARED_FIXTURES } from '../../../test/helpers/tmp.js';
import { parseLdd, parseUsage } from './usage.js';
import { parseFfmpegLibvmafLog, parseVmafJson, pool } from './vmaf-output.js';

const OUT = path.join(SHARED_FIXTURES, 'cli-output');
const builds = ['netflix-vmaf-3.2.0', 'lusoris-vmaf-3.0.0-cpu'];

describe('vmaf --json output', () => {
  for (const build of builds) {
    const files = readdirSync(path.join(OUT, build)).filter((f) => f.endsWith('.json'));
    it(`parses all ${files.length} real outputs of ${build}`, () => {
      expect(files.length).toBeGreaterThan(20);
      for (const f of files) {
        const text = readFileSync(path.join(OUT, build, f), 'utf8');
        const raw = JSON.parse(text);
        const parsed = parseVmafJson(text, f);
        expect(Object.keys(parsed.pooled).sort(), f).toEqual(Object.keys(raw.pooled_metrics).sort());
        for (const [k, v] of Object.entries(parsed.pooled)) expect(v.mean, `${f} ${k}`).toBe(raw.pooled_metrics[k].mean);
        expect(parsed.frames.length, f).toBe(raw.frames.length);
      }
    });
  }

  it('pools per-frame values the way libvmaf does (mean, min, max, harmonic mean)', () => {
    const text = readFileSync(path.join(OUT, 'netflix-vmaf-3.2.0', 'q160x90_v061.json'), 'utf8');
    const parsed = parseVmafJson(text);
    const ours = pool(parsed.frames);
    for (const name of ['vmaf', 'integer_adm2', 'integer_motion2']) {
      const theirs = parsed.pooled[name];
      expect(ours[name]?.mean).toBeCloseTo(theirs?.mean as number, 5);
      expect(ours[name]?.min).toBe(theirs?.min);
      expect(ours[name]?.max).toBe(theirs?.max);
      expect(ours[name]?.harmonic_mean).toBeCloseTo(theirs?.harmonic_mean as number, 5);
    }
  });

  it('refuses output with no pooled metrics, and non-JSON, with their own codes', () => {
    expect(() => parseVmafJson('{"version":"3.2.0","frames":[]}')).toThrow(expect.objectContaining({ code: 'VMAF_OUTPUT_NO_POOLED' }));
    expect(() => parseVmafJson('{"pooled_metrics":{}}')).toThrow(expect.objectContaining({ code: 'VMAF_OUTPUT_NO_POOLED' }));
    expect(() => parseVmafJson('<xml/>')).toThrow(expect.objectContaining({ code: 'VMAF_OUTPUT_INVALID' }));
    expect(() => parseVmafJson('{"pooled_metrics":{"vmaf":{"mean":"high"}}}')).toThrow(expect.objectContaining({ code: 'VMAF_OUTPUT_INVALID' }));
    expect(() => parseVmafJson('[1,2]')).toThrow(expect.objectContaining({ code: 'VMAF_OUTPUT_INVALID' }));
  });

  it('parses an ffmpeg libvmaf 1.x log and pools it', () => {
    const log = JSON.stringify({ version: '1.3.7', frames: [{ frameNum: 0, metrics: { vmaf: 90, psnr: 40 } }, { frameNum: 1, metrics: { vmaf: 94, psnr: 42 } }] });
    const p = parseFfmpegLibvmafLog(log);
    expect(p.version).toBe('1.3.7');
    expect(p.pooled.vmaf).toMatchObject({ mean: 92, min: 90, max: 94 });
    expect(() => parseFfmpegLibvmafLog('{"frames":[]}')).toThrow(expect.objectContaining({ code: 'VMAF_OUTPUT_NO_POOLED' }));
  });
});

describe('usage text', () => {
  it('Netflix vmaf 3.2.0 advertises no GPU backend and no --backend selector', () => {
    const u = parseUsage(readFileSync(path.join(OUT, 'netflix-vmaf-3.2.0', 'usage.txt'), 'utf8'));
    expect(u.advertised).toEqual([]);
    expect(u.hasBackendSelector).toBe(false);
    expect(u.options).toEqual(expect.arrayContaining(['reference', 'distorted', 'model', 'feature', 'frame_cnt', 'json']));
  });

  it('the fork advertises every backend, built or not (so advertising is no evidence)', () => {
    for (const f of ['usage.txt', 'usage-after-bad-backend.txt']) {
      const u = parseUsage(readFileSync(path.join(OUT, 'lusoris-vmaf-3.0.0-cpu', f), 'utf8'));
      expect(u.advertised).toEqual(['cpu', 'cuda', 'sycl', 'vulkan', 'hip', 'metal']);
      expect(u.hasBackendSelector).toBe(true);
    }
  });

  it('reads library names from ldd output', () => {
    const ldd = '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibcudart.so.12 => /usr/local/cuda/lib64/libcudart.so.12 (0x1)\n\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n';
    expect(parseLdd(ldd)).toEqual(['linux-vdso.so.1', 'libcudart.so.12', 'libm.so.6']);
    expect(parseLdd('\tstatically linked\n')).toEqual([]);
  });
});
