/**
 * Cross-check against GitHub's own workflow parser (@actions/workflow-parser). It does not load
 * as ESM, so the test bundles it as CommonJS with esbuild into a temporary file and requires that.
 * The linter itself never imports it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWorkflowParser, type ParserError } from '../../../../test/helpers/workflow-parser.js';
import { lintWorkflowText } from './index.js';
import { CLEAN_CI, CLEAN_RELEASE, CLEAN_SIGN, NOT_WORKFLOWS, POSITIVES } from './testing.js';

let parser: Awaited<ReturnType<typeof loadWorkflowParser>>;

beforeAll(async () => {
  parser = await loadWorkflowParser();
});

afterAll(async () => {
  await parser?.dispose();
});

function githubErrors(name: string, content: string): ParserError[] {
  return parser.errors(name, content);
}

describe("lint-workflows against GitHub's workflow parser", () => {
  const valid: Array<[string, string]> = [
    ['release.yml (clean)', CLEAN_RELEASE],
    ['sign.yml (clean)', CLEAN_SIGN],
    ['ci.yml (clean)', CLEAN_CI],
    ...POSITIVES.map(([rule, file, text]): [string, string] => [`${file} (${rule})`, text]),
  ];

  it.each(valid)('%s is a valid workflow there, and not MR000 here', (name, text) => {
    expect(githubErrors(name, text).map((e) => e.message)).toEqual([]);
    expect(lintWorkflowText(text, 'x.yml').findings.filter((f) => f.ruleId === 'MR000')).toEqual([]);
  });

  it.each(NOT_WORKFLOWS)('%s is rejected there and is MR000 here, at the same position', (name, text, line, column) => {
    const theirs = githubErrors(`${name}.yml`, text);
    expect(theirs.length).toBeGreaterThan(0);
    expect(theirs[0]?.range?.start).toEqual({ line, column });
    const ours = lintWorkflowText(text, 'x.yml').findings;
    expect(ours[0]).toMatchObject({ ruleId: 'MR000', line, column });
  });

  it('a deliberately broken workflow fails there (the cross-check can fail)', () => {
    const broken = CLEAN_CI.replace('    steps:', '    stepz:');
    expect(githubErrors('broken.yml', broken).map((e) => e.message)).toEqual([expect.stringContaining("Unexpected value 'stepz'")]);
  });
});
