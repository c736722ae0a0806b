/**
 * Output formats of lint-workflows: text for people, canonical JSON for tools, SARIF 2.1.0 for
 * code-scanning uploads. All three are deterministic: the same report gives the same bytes.
 */
import { canonicalJson } from '@mcp-release/manifest';
import { printable, type LintReport } from './lint.js';
import { LINT_RULES } from './rules.js';

export const LINT_TOOL_NAME = 'mcp-release lint-workflows';

/** One finding per block: `file:line:column severity ID name: message` and the fix; then a summary line. */
export function renderText(report: LintReport): string {
  const lines: string[] = [];
  const names = new Map<string, string>(LINT_RULES.map((r) => [r.id, r.name]));
  for (const f of report.findings) {
    lines.push(`${printable(f.file)}:${f.line}:${f.column} ${f.severity} ${f.ruleId} ${names.get(f.ruleId) ?? ''}: ${f.message}`);
    lines.push(`  fix: ${f.fix}`);
  }
  const { files, errors, warnings } = report.summary;
  const checked = `${files} workflow file${files === 1 ? '' : 's'}`;
  const release = report.releaseWorkflows.length ? ` (release workflows: ${printable(report.releaseWorkflows.join(', '))})` : '';
  lines.push(
    errors + warnings === 0
      ? `no findings in ${checked}${release}`
      : `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} in ${checked}${release}`,
  );
  return `${lines.join('\n')}\n`;
}

/** The report as canonical JSON (sorted keys; findings already sorted by file, line, column, rule). */
export function renderJson(report: LintReport): string {
  return canonicalJson({ tool: LINT_TOOL_NAME, format: 1, ...report });
}

/** A relative path as a URI reference: each segment percent-encoded, `/` kept. */
function uriOf(file: string): string {
  return file
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/**
 * SARIF 2.1.0 log with one run. Every rule is listed (so a result's ruleIndex is stable across
 * reports); each result carries the finding's message and its fix, and a region with the
 * 1-based start line and column (UTF-16 code units, as declared in columnKind).
 */
export function renderSarif(report: LintReport): string {
  const index = new Map<string, number>(LINT_RULES.map((r, i) => [r.id, i]));
  const log = {
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: LINT_TOOL_NAME,
            rules: LINT_RULES.map((r) => ({
              id: r.id,
              name: r.name,
              shortDescription: { text: r.summary },
              fullDescription: { text: r.summary },
              help: { text: r.help },
              defaultConfiguration: { level: r.severity },
              properties: { tags: ['security', 'github-actions'] },
            })),
          },
        },
        columnKind: 'utf16CodeUnits',
        results: report.findings.map((f) => ({
          ruleId: f.ruleId,
          ruleIndex: index.get(f.ruleId),
          level: f.severity,
          message: { text: `${f.message}. Fix: ${f.fix}.` },
          locations: [
            {
              physicalLocation: {
                artifactLocation: { uri: uriOf(f.file) },
                region: { startLine: f.line, startColumn: f.column },
              },
            },
          ],
        })),
      },
    ],
  };
  return canonicalJson(log);
}
