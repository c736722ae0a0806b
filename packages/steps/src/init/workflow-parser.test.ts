/**
 * The rendered workflows against GitHub's own workflow parser: what init writes must be a workflow
 * GitHub accepts, for an adopting repository and for mcp-release itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKFLOW_TEMPLATES, renderTemplates, type RenderedWorkflows } from './render.js';
import { ADOPTER, SELF, loadWorkflowParser } from './testing.js';

let parser: Awaited<ReturnType<typeof loadWorkflowParser>>;
const rendered: Record<string, RenderedWorkflows> = {};

beforeAll(async () => {
  parser = await loadWorkflowParser();
  rendered.adopter = await renderTemplates(ADOPTER);
  rendered.self = await renderTemplates(SELF);
});

afterAll(async () => {
  await parser?.dispose();
});

describe("the rendered workflows against GitHub's workflow parser", () => {
  const cases = ['adopter', 'self'].flatMap((who) => WORKFLOW_TEMPLATES.map((name) => [who, name] as const));

  it.each(cases)('%s %s is a valid workflow there', (who, name) => {
    expect(parser.errors(name, (rendered[who] as RenderedWorkflows)[name]).map((e) => e.message)).toEqual([]);
  });

  it('the check can fail: a misspelt key and a bad expression are reported', () => {
    const release = (rendered.adopter as RenderedWorkflows)['release.yml'];
    const broken = release.replace('    timeout-minutes: 15\n', '    timeout-minutez: 15\n');
    expect(broken).not.toBe(release);
    expect(parser.errors('release.yml', broken).map((e) => e.message)).toEqual([expect.stringContaining("Unexpected value 'timeout-minutez'")]);
    const badExpression = release.replace("if: ${{ !inputs.dry-run }}", 'if: ${{ !inputs.dry-run ) }}');
    expect(parser.errors('release.yml', badExpression).length).toBeGreaterThan(0);
  });
});
