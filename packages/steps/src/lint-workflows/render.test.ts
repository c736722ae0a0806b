import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/helpers/tmp.js';
import { LINT_RULES, lintWorkflowFiles, lintWorkflowText, renderJson, renderSarif, renderText, type LintReport } from './index.js';
import { CLEAN_CI, POSITIVES } from './testing.js';

/**
 * The parts of the SARIF 2.1.0 schema a code-scanning upload relies on, written from the
 * standard's required properties (no copy of the schema is installed): sarifLog.version and runs,
 * run.tool.driver.name, reportingDescriptor.id, result.message.text, level, and physical
 * locations with a relative URI and 1-based region start.
 */
const sarifShape = {
  type: 'object',
  required: ['version', 'runs'],
  properties: {
    version: { const: '2.1.0' },
    runs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['tool', 'results'],
        properties: {
          columnKind: { enum: ['utf16CodeUnits', 'unicodeCodePoints'] },
          tool: {
            type: 'object',
            required: ['driver'],
            properties: {
              driver: {
                type: 'object',
                required: ['name', 'rules'],
                properties: {
                  name: { type: 'string', minLength: 1 },
                  rules: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['id', 'shortDescription', 'help', 'defaultConfiguration'],
                      properties: {
                        id: { type: 'string', pattern: '^MR\\d{3}$' },
                        shortDescription: { $ref: '#/$defs/message' },
                        fullDescription: { $ref: '#/$defs/message' },
                        help: { $ref: '#/$defs/message' },
                        defaultConfiguration: { type: 'object', required: ['level'], properties: { level: { $ref: '#/$defs/level' } } },
                      },
                    },
                  },
                },
              },
            },
          },
          results: {
            type: 'array',
            items: {
              type: 'object',
              required: ['ruleId', 'ruleIndex', 'level', 'message', 'locations'],
              properties: {
                ruleId: { type: 'string' },
                ruleIndex: { type: 'integer', minimum: 0 },
                level: { $ref: '#/$defs/level' },
                message: { $ref: '#/$defs/message' },
                locations: {
                  type: 'array',
                  minItems: 1,
                  items: {
                    type: 'object',
                    required: ['physicalLocation'],
                    properties: {
                      physicalLocation: {
                        type: 'object',
                        required: ['artifactLocation', 'region'],
                        properties: {
                          artifactLocation: {
                            type: 'object',
                            required: ['uri'],
                            // A relative reference: no scheme, not rooted, no backslashes or spaces.
                            properties: { uri: { type: 'string', pattern: '^(?![A-Za-z][A-Za-z0-9+.-]*:)(?!/)[^\\\\ ]+$' } },
                          },
                          region: {
                            type: 'object',
                            required: ['startLine', 'startColumn'],
                            properties: { startLine: { type: 'integer', minimum: 1 }, startColumn: { type: 'integer', minimum: 1 } },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
  $defs: {
    message: { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 } } },
    level: { enum: ['none', 'note', 'warning', 'error'] },
  },
};
const validateSarif = new Ajv({ allErrors: true, strict: false }).compile(sarifShape);

async function positivesReport(order: 'forward' | 'reverse' = 'forward'): Promise<{ report: LintReport; root: string }> {
  const root = await tempDir();
  const dir = path.join(root, 'work flows');
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  for (const [i, [, , text]] of POSITIVES.entries()) {
    const name = `p${String(i).padStart(2, '0')}.yml`;
    await writeFile(path.join(dir, name), text);
    names.push(path.join(dir, name));
  }
  await writeFile(path.join(dir, 'clean.yml'), CLEAN_CI);
  names.push(path.join(dir, 'clean.yml'));
  return { report: await lintWorkflowFiles(order === 'forward' ? names : names.reverse(), { root }), root };
}

describe('lint-workflows output', () => {
  it('SARIF 2.1.0: every rule with help and level, every finding as a result with a relative location', async () => {
    const { report } = await positivesReport();
    expect(report.findings.length).toBeGreaterThan(POSITIVES.length);
    const sarif = JSON.parse(renderSarif(report));
    expect(validateSarif(sarif), JSON.stringify(validateSarif.errors)).toBe(true);
    const run = sarif.runs[0];
    expect(run.tool.driver.name).toBe('mcp-release lint-workflows');
    expect(run.tool.driver.rules.map((r: { id: string }) => r.id)).toEqual(LINT_RULES.map((r) => r.id));
    expect(run.tool.driver.rules.find((r: { id: string }) => r.id === 'MR011').defaultConfiguration.level).toBe('warning');
    expect(run.results).toHaveLength(report.findings.length);
    for (const [i, result] of run.results.entries()) {
      const f = report.findings[i];
      expect(run.tool.driver.rules[result.ruleIndex].id).toBe(result.ruleId);
      expect(result).toMatchObject({ ruleId: f?.ruleId, level: f?.severity });
      expect(result.message.text).toContain(f?.message);
      expect(result.message.text).toContain(`Fix: ${f?.fix}`);
      expect(result.locations[0].physicalLocation).toEqual({
        artifactLocation: { uri: `work%20flows/${path.posix.basename(f?.file ?? '')}` },
        region: { startLine: f?.line, startColumn: f?.column },
      });
    }
  });

  it('the SARIF check rejects a log missing required fields (it can fail)', async () => {
    const sarif = JSON.parse(renderSarif(lintWorkflowText(POSITIVES[0]?.[2] ?? '', 'ci.yml')));
    const broken = structuredClone(sarif);
    delete broken.runs[0].results[0].message;
    expect(validateSarif(broken)).toBe(false);
    const badLevel = structuredClone(sarif);
    badLevel.runs[0].results[0].level = 'fatal';
    expect(validateSarif(badLevel)).toBe(false);
    const absolute = structuredClone(sarif);
    absolute.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri = '/abs/ci.yml';
    expect(validateSarif(absolute)).toBe(false);
    const zeroLine = structuredClone(sarif);
    zeroLine.runs[0].results[0].locations[0].physicalLocation.region.startLine = 0;
    expect(validateSarif(zeroLine)).toBe(false);
  });

  it('JSON is byte-identical across runs and argument orders, sorted, with a summary', async () => {
    const a = await positivesReport('forward');
    const b = await positivesReport('reverse');
    const first = renderJson(a.report);
    expect(renderJson(b.report)).toBe(first);
    expect(renderJson(a.report)).toBe(first);
    const parsed = JSON.parse(first);
    expect(Object.keys(parsed)).toEqual(['files', 'findings', 'format', 'releaseWorkflows', 'summary', 'tool']);
    expect(parsed.summary).toEqual({ files: POSITIVES.length + 1, errors: a.report.summary.errors, warnings: 1 });
    const keys = parsed.findings.map((f: { file: string; line: number; column: number }) => [f.file, f.line, f.column]);
    expect(keys).toEqual(
      [...keys].sort((x: [string, number, number], y: [string, number, number]) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1] || x[2] - y[2])),
    );
    expect(Object.keys(parsed.findings[0])).toEqual(['column', 'file', 'fix', 'line', 'message', 'ruleId', 'severity']);
  });

  it('text names file:line:column, severity, rule and fix for each finding, then a summary', () => {
    const report = lintWorkflowText(POSITIVES[1]?.[2] ?? '', '.github/workflows/ci.yml');
    const text = renderText(report);
    expect(text).toMatch(/^\.github\/workflows\/ci\.yml:7:15 error MR002 unpinned-action: jobs\.test\.steps\[0\] uses actions\/checkout, which is pinned to "v4"/);
    expect(text).toContain('\n  fix: pin actions/checkout to the full commit SHA');
    expect(text.endsWith('\n1 error, 0 warnings in 1 workflow file\n')).toBe(true);
    expect(renderText(lintWorkflowText(CLEAN_CI, 'ci.yml'))).toBe('no findings in 1 workflow file\n');
    expect(renderText(lintWorkflowText(CLEAN_CI, 'release.yml'))).toBe('no findings in 1 workflow file (release workflows: release.yml)\n');
  });
});
