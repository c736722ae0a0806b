import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CodedError, newManifest, readManifest } from '@mcp-release/manifest';
import { tempDir } from '../../../test/helpers/tmp.js';
import { StepSkipped } from './errors.js';
import { exec, execChecked } from './exec.js';
import { silentLogger } from './log.js';
import { runPipeline } from './runner.js';
import { createContext, skip, type Context, type Step } from './step.js';

const plan = { commit: 'b'.repeat(40), dirty: false, timestamp: '2026-01-01T00:00:00Z', epoch: 1767225600, tag: 'v1.0.0', packages: [] };

async function setup(): Promise<{ ctx: Context; log: ReturnType<typeof silentLogger>; dir: string }> {
  const dir = await tempDir();
  const log = silentLogger();
  let t = 0;
  const ctx = createContext({
    repoRoot: dir,
    releaseDir: dir,
    workDir: dir,
    manifestPath: path.join(dir, '..', `${path.basename(dir)}.manifest.json`),
    manifest: newManifest(structuredClone(plan)),
    options: {},
    deps: { exec, env: {}, now: () => new Date((t += 5)) },
    log,
  });
  return { ctx, log, dir };
}

/** A step that writes one file and counts its runs. */
function writer(name: string, file: string, content: () => string, runs: { n: number }): Step {
  return {
    name,
    description: `write ${file}`,
    fingerprint: () => `${'0'.repeat(63)}${content().length % 10}`,
    async run(ctx) {
      runs.n += 1;
      await writeFile(path.join(ctx.releaseDir, file), content());
      await ctx.addArtifact(file, 'gate-report', 'any');
    },
  };
}

describe('runPipeline', () => {
  it('runs steps in order, records each state and saves the manifest', async () => {
    const { ctx, log } = await setup();
    const order: string[] = [];
    const steps: Step[] = ['one', 'two'].map((name) => ({ name, description: name, run: async () => void order.push(name) }));
    const result = await runPipeline(steps, ctx);
    expect(result.ok).toBe(true);
    expect(order).toEqual(['one', 'two']);
    expect(result.steps.map((s) => [s.name, s.state])).toEqual([
      ['one', 'succeeded'],
      ['two', 'succeeded'],
    ]);
    expect(result.steps.every((s) => s.durationMs > 0)).toBe(true);
    expect((await readManifest(ctx.manifestPath)).steps.two?.state).toBe('succeeded');
    expect(log.lines.some((l) => l.startsWith('✔ [2/2] two'))).toBe(true);
  });

  it('records typed skips, from skip() and from StepSkipped thrown by run', async () => {
    const { ctx } = await setup();
    const result = await runPipeline(
      [
        { name: 'a', description: 'a', skip: () => skip('not configured'), run: async () => Promise.reject(new Error('must not run')) },
        {
          name: 'b',
          description: 'b',
          run: async () => {
            throw new StepSkipped('nothing to sign');
          },
        },
      ],
      ctx,
    );
    expect(result.ok).toBe(true);
    expect(result.steps.map((s) => [s.state, s.reason])).toEqual([
      ['skipped', 'not configured'],
      ['skipped', 'nothing to sign'],
    ]);
    expect(ctx.manifest.steps.b).toEqual({ state: 'skipped', reason: 'nothing to sign' });
  });

  it('skips finished work with the same fingerprint and digests, and redoes it when an output changed', async () => {
    const { ctx, dir } = await setup();
    const runs = { n: 0 };
    const step = writer('report', 'report.json', () => '{"ok":true}', runs);
    await runPipeline([step], ctx);
    const second = await runPipeline([step], ctx);
    expect(runs.n).toBe(1);
    expect(second.steps[0]?.reason).toMatch(/already done/);

    await writeFile(path.join(dir, 'report.json'), '{"ok":false}'); // tampered
    const third = await runPipeline([step], ctx);
    expect(runs.n).toBe(2);
    expect(third.steps[0]?.state).toBe('succeeded');
    expect(await readFile(path.join(dir, 'report.json'), 'utf8')).toBe('{"ok":true}');
  });

  it('re-runs when the inputs change, and removes outputs it no longer makes', async () => {
    const { ctx, dir } = await setup();
    let produce = ['x.txt', 'y.txt'];
    const step: Step = {
      name: 'multi',
      description: 'multi',
      fingerprint: () => String(produce.length).repeat(64).slice(0, 64),
      async run(c) {
        for (const f of produce) {
          await writeFile(path.join(c.releaseDir, f), f);
          await c.addArtifact(f, 'gate-report', 'any');
        }
      },
    };
    await runPipeline([step], ctx);
    produce = ['x.txt'];
    await runPipeline([step], ctx);
    expect(ctx.manifest.artifacts.map((a) => a.path)).toEqual(['x.txt']);
    await expect(readFile(path.join(dir, 'y.txt'))).rejects.toThrow();
  });

  it('stops at a failing step, records its coded error and runs nothing after it', async () => {
    const { ctx } = await setup();
    let later = false;
    const result = await runPipeline(
      [
        {
          name: 'boom',
          description: 'fails',
          run: async () => {
            throw new CodedError('NATIVE_TESTS_FAILED', 'meson test failed', { hint: 'fix the tests' });
          },
        },
        { name: 'after', description: 'after', run: async () => void (later = true) },
      ],
      ctx,
    );
    expect(result.ok).toBe(false);
    expect(later).toBe(false);
    expect((result.error as CodedError).code).toBe('NATIVE_TESTS_FAILED');
    const saved = await readManifest(ctx.manifestPath);
    expect(saved.steps.boom).toEqual({ state: 'failed', error: { code: 'NATIVE_TESTS_FAILED', message: 'meson test failed', hint: 'fix the tests' } });
    expect(saved.steps.after).toBeUndefined();
  });

  it('prints a heartbeat while a long step is silent', async () => {
    const { ctx, log } = await setup();
    const result = await runPipeline(
      [
        {
          name: 'long',
          description: 'waits for its own heartbeat',
          run: () =>
            new Promise<void>((resolve) => {
              const poll = setInterval(() => {
                if (log.lines.some((l) => l.includes('long still running'))) {
                  clearInterval(poll);
                  resolve();
                }
              }, 2);
            }),
        },
      ],
      ctx,
      { heartbeatMs: 10 },
    );
    expect(result.ok).toBe(true);
  });

  it('puts the markdown report of a step into the summary', async () => {
    const { ctx } = await setup();
    const run = await runPipeline([{ name: 'gate', description: 'g', run: async () => ({ data: { markdown: '## Gate: PASSED\n\n| check | pass |' } }) }], ctx);
    const { renderSummary } = await import('./summary.js');
    const md = renderSummary('mcp-release test', run, ctx.manifest);
    expect(md).toMatch(/\| gate \| succeeded \|/);
    expect(md).toMatch(/## Gate: PASSED\n\n\| check \| pass \|/);
  });

  it('refuses a pipeline that lists a step twice', async () => {
    const { ctx } = await setup();
    const s: Step = { name: 'x', description: 'x', run: async () => undefined };
    await expect(runPipeline([s, s], ctx)).rejects.toMatchObject({ code: 'PIPELINE_DUPLICATE_STEP' });
  });
});

describe('exec', () => {
  it('names a missing command and how to install it', async () => {
    await expect(exec('meson-does-not-exist-here', [])).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    await expect(exec('meson-does-not-exist-here', [])).rejects.toMatchObject({ hint: expect.stringContaining('install') });
  });

  it('splits output into lines for progress and keeps the tail for errors', async () => {
    const lines: string[] = [];
    const r = await exec('sh', ['-c', 'printf "[1/3] a\\n[2/3] b\\r\\n[3/3] c"; echo oops >&2; exit 3'], { onLine: (l) => lines.push(l) });
    expect(r.exitCode).toBe(3);
    expect(lines).toEqual(expect.arrayContaining(['[1/3] a', '[2/3] b', '[3/3] c', 'oops']));
    const err = await execChecked(exec, 'sh', ['-c', 'echo first; echo the real reason >&2; exit 2'], { code: 'X_FAILED', what: 'x failed', hint: 'fix x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'X_FAILED', hint: 'fix x', details: expect.arrayContaining(['the real reason']) });
  });

  it('passes arguments without a shell', async () => {
    const r = await exec('printf', ['%s', '$(echo injected); `id`']);
    expect(r.stdout).toBe('$(echo injected); `id`');
  });
});
