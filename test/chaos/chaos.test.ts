import { describe, expect, it } from 'vitest';
import type { Manifest } from '@mcp-release/manifest';
import { releasePipeline } from '@mcp-release/steps';
import { allCases, KILL_STEPS, REPEATED, selectCases, TARGETS } from './cases.js';
import { classify, lastError, type Observation } from './outcome.js';
import { markdownCases, summaryLine, textTable } from './report.js';
import type { CaseResult } from './run-case.js';
import { BOOTSTRAP_VERSION, finishedProblems, integrityOf, leftoverProblems, publicParts, type PublicState } from './state.js';

/** The campaign's own logic: the case table, how an outcome is classified, how a final state is judged. */

describe('the case table', () => {
  const cases = allCases();

  it('has at least 60 cases with unique ids, six faults at every service and a kill at every step boundary', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
    for (const t of TARGETS) {
      expect(cases.filter((c) => c.id.startsWith(`${t.key}-`) && !c.id.startsWith(`${t.key}-npm-`)).map((c) => c.id.slice(t.key.length + 1)), t.key).toEqual(['5xx-once', '5xx-repeated', 'reset', 'timeout', 'slow', '4xx']);
    }
    for (const step of KILL_STEPS) expect(cases.some((c) => c.kill?.kind === 'after-step' && c.kill.step === step), step).toBe(true);
    expect(cases.filter((c) => c.kill?.kind === 'during-fault').map((c) => c.id)).toEqual(['kill-mid-upload', 'kill-mid-publish']);
  });

  it('kills at real steps of the release, in their order', () => {
    const order = releasePipeline.map((s) => s.name);
    const at = KILL_STEPS.map((s) => order.indexOf(s));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    for (const t of TARGETS.filter((x) => x.armAfter)) expect(order, t.key).toContain(t.armAfter);
  });

  it('declares a coded diagnosis for every case that must fail on its own, and none for the others', () => {
    for (const c of cases) {
      const failsOnItsOwn = c.expected !== 'completes' && !c.kill;
      expect(Boolean(c.diagnosis), c.id).toBe(failsOnItsOwn);
      if (c.diagnosis) expect(c.diagnosis.code, c.id).toMatch(/^[A-Z][A-Z0-9_]+$/);
    }
    // a 4xx is answered once: a retry would get through and the case would not fail as declared
    for (const c of cases.filter((x) => x.id.endsWith('-4xx'))) expect(c.faults.map((f) => f.rule.count), c.id).toEqual([1]);
    for (const c of cases.filter((x) => x.id.endsWith('-5xx-repeated'))) expect(c.faults.map((f) => f.rule.count), c.id).toEqual([REPEATED]);
  });

  it('selects cases by a regular expression, and refuses one that is not', () => {
    expect(selectCases(allCases(), '^fulcio-').map((c) => c.id)).toEqual(['fulcio-5xx-once', 'fulcio-5xx-repeated', 'fulcio-reset', 'fulcio-timeout', 'fulcio-slow', 'fulcio-4xx']);
    expect(selectCases(allCases(), undefined)).toHaveLength(cases.length);
    expect(() => selectCases(allCases(), '(')).toThrow(/not a regular expression/);
  });

  it('renders as a markdown table with one row per case', () => {
    const md = markdownCases(cases).split('\n');
    expect(md).toHaveLength(cases.length + 2);
    expect(md[0]).toBe('| case | service/step | fault | expected | diagnosis |');
    expect(md.find((l) => l.startsWith('| `git-push-4xx` '))).toBe('| `git-push-4xx` | git push (receive-pack) | 403 once (no retry) | resume-completes | `TAG_PUSH_DENIED` |');
  });
});

describe('reading the outcome', () => {
  const stderr = 'error OTHER_CODE: earlier\n✖ [18/20] push-tag failed after 1.0 s\nerror TAG_PUSH_FAILED: pushing v1.0.1 failed after 4 attempts\n  | fatal: unable to access\n  fix: run `mcp-release resume` once the remote answers\n';
  const diagnosis = { code: 'TAG_PUSH_FAILED', message: /after \d+ attempts/ };
  const failed: Observation = { hung: false, exitCode: 1, killed: false, error: lastError(stderr), publicAfter: ['npm 1.0.1'], resumed: true };

  it('takes the last coded error and whether it says how to fix it', () => {
    expect(lastError(stderr)).toEqual({ code: 'TAG_PUSH_FAILED', message: 'pushing v1.0.1 failed after 4 attempts', hasFix: true });
    expect(lastError('error NO_FIX: broken\n')).toEqual({ code: 'NO_FIX', message: 'broken', hasFix: false });
    expect(lastError('npm error code E503\n')).toBeUndefined();
  });

  it('names each outcome', () => {
    expect(classify({ hung: false, exitCode: 0, killed: false, publicAfter: [] }, undefined)).toBe('completes');
    expect(classify(failed, diagnosis)).toBe('resume-completes');
    expect(classify({ ...failed, publicAfter: [] }, diagnosis)).toBe('nothing-public');
    expect(classify({ ...failed, resumed: false }, diagnosis)).toBe('resume-fails');
    expect(classify({ hung: false, exitCode: null, killed: true, publicAfter: [], resumed: true }, undefined)).toBe('resume-completes');
    expect(classify({ hung: true, exitCode: null, killed: false, publicAfter: [], resumed: true }, undefined)).toBe('hung');
  });

  it('does not count a failure as diagnosed with another code, a message that misses the point, no fix, or no declaration', () => {
    expect(classify(failed, { code: 'TAG_PUSH_DENIED' })).toBe('fails: TAG_PUSH_FAILED');
    expect(classify(failed, { code: 'TAG_PUSH_FAILED', message: /refused/ })).toBe('fails: TAG_PUSH_FAILED');
    expect(classify({ ...failed, error: { code: 'TAG_PUSH_FAILED', message: 'after 4 attempts', hasFix: false } }, diagnosis)).toBe('fails: TAG_PUSH_FAILED');
    expect(classify(failed, undefined)).toBe('fails: TAG_PUSH_FAILED');
    expect(classify({ hung: false, exitCode: 1, killed: false, publicAfter: [] }, diagnosis)).toBe('fails: exit 1, no coded error');
  });
});

describe('judging the public state', () => {
  const commit = 'a'.repeat(40);
  const tarballSha512 = 'ab'.repeat(64);
  const manifest = {
    plan: { commit, packages: [{ name: 'acme-widget', version: '1.0.1' }] },
    artifacts: [
      { path: 'acme-widget-1.0.1.tgz', kind: 'npm-tarball', sha256: '1'.repeat(64), sha512: tarballSha512 },
      { path: 'SHA256SUMS', kind: 'checksums', sha256: '2'.repeat(64), sha512: 'cd'.repeat(64) },
    ],
    steps: { plan: { state: 'succeeded' }, 'build-native': { state: 'skipped' } },
  } as unknown as Manifest;
  const finished: PublicState = {
    versions: { [BOOTSTRAP_VERSION]: 'sha512-x', '1.0.1': integrityOf(tarballSha512) },
    distTags: { latest: '1.0.1' },
    releases: [{ id: 1, draft: false, assets: { 'acme-widget-1.0.1.tgz': `sha256:${'1'.repeat(64)}`, SHA256SUMS: `sha256:${'2'.repeat(64)}` } }],
    tag: { commit, annotated: true },
  };

  it('accepts a finished release that matches the manifest', () => {
    expect(finishedProblems(finished, manifest, commit)).toEqual([]);
    expect(publicParts(finished)).toEqual(['npm 1.0.1', 'a published release', 'the tag v1.0.1']);
  });

  it('names every way a finished release can differ from the manifest', () => {
    const bad: PublicState = {
      versions: { [BOOTSTRAP_VERSION]: 'sha512-x', '1.0.1': 'sha512-other' },
      distTags: { latest: BOOTSTRAP_VERSION },
      releases: [{ id: 1, draft: true, assets: { 'acme-widget-1.0.1.tgz': `sha256:${'9'.repeat(64)}`, 'extra.txt': 'sha256:0' } }],
      tag: { commit: 'b'.repeat(40), annotated: false },
    };
    expect(finishedProblems(bad, { ...manifest, steps: { sign: { state: 'failed' } } } as unknown as Manifest, commit)).toEqual([
      expect.stringMatching(/^registry integrity of 1\.0\.1 is sha512-other/),
      `dist-tag latest is ${BOOTSTRAP_VERSION}, not 1.0.1`,
      'the release v1.0.1 is still a draft',
      expect.stringMatching(/^asset acme-widget-1\.0\.1\.tgz has sha256:9+, the manifest sha256:1+$/),
      'asset SHA256SUMS is missing',
      'asset extra.txt is not a release file',
      'the tag v1.0.1 is not annotated',
      expect.stringMatching(/^the tag names b+, the plan a+/),
      'manifest steps not finished: sign failed',
    ]);
    expect(finishedProblems({ ...finished, versions: { '1.0.1': finished.versions['1.0.1'] as string, '1.0.2': 'x' }, releases: [], tag: undefined }, manifest, commit)).toEqual([
      `registry versions 1.0.1, 1.0.2; expected ${BOOTSTRAP_VERSION}, 1.0.1`,
      '0 releases for v1.0.1; expected exactly one',
      'the tag v1.0.1 is missing',
    ]);
  });

  it('sees a draft as nothing public, and flags a lost bootstrap version or a second release', () => {
    const draftOnly: PublicState = { versions: { [BOOTSTRAP_VERSION]: 'sha512-x' }, distTags: {}, releases: [{ id: 1, draft: true, assets: {} }] };
    expect(publicParts(draftOnly)).toEqual([]);
    expect(leftoverProblems(draftOnly)).toEqual([]);
    expect(leftoverProblems({ ...draftOnly, versions: {}, releases: [draftOnly.releases[0] as PublicState['releases'][number], { id: 2, draft: true, assets: {} }] })).toEqual(['the bootstrap version is gone from the registry', '2 releases for v1.0.1']);
  });
});

describe('the report', () => {
  const result = (id: string, pass: boolean): CaseResult => ({ id, target: 'Fulcio signingCert', fault: '503 once', expected: 'completes', observed: pass ? 'completes' : 'hung', seconds: 12.34, pass, hits: [1], problems: [], phases: { setup: 1, release: 10 } });

  it('prints one aligned row per case and closes with the counts', () => {
    const table = textTable([result('fulcio-5xx-once', true), result('fulcio-timeout', false)]).split('\n');
    expect(table[0]).toMatch(/^case\s+service\/step\s+fault\s+expected\s+observed\s+seconds\s+pass$/);
    expect(table[2]).toMatch(/^fulcio-5xx-once\s+Fulcio signingCert\s+503 once\s+completes\s+completes\s+12\.3\s+yes$/);
    expect(table[3]).toMatch(/hung\s+12\.3\s+NO$/);
    expect(summaryLine([result('a', true), result('b', false), result('c', true)])).toBe('2 passed, 1 failed');
  });
});
