import type { Manifest } from '@mcp-release/manifest';
import { formatBytes, formatDuration } from './log.js';
import type { RunResult } from './runner.js';

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** Markdown for a GitHub job summary or a terminal: steps with durations, then artifacts. */
export function renderSummary(title: string, run: RunResult, manifest: Manifest): string {
  const lines = [`## ${title}`, ''];
  lines.push(run.ok ? `Result: **succeeded** in ${formatDuration(run.durationMs)}` : `Result: **failed** in ${formatDuration(run.durationMs)}`, '');
  lines.push('| step | result | duration | detail |', '| --- | --- | ---: | --- |');
  for (const s of run.steps) {
    const detail = s.error ? `${s.error.code}: ${s.error.message}` : s.reason ?? [...s.notes, s.outputs.length ? `${s.outputs.length} file(s)` : ''].filter(Boolean).join('; ');
    lines.push(`| ${s.name} | ${s.state} | ${formatDuration(s.durationMs)} | ${cell(detail)} |`);
  }
  if (manifest.artifacts.length) {
    lines.push('', '| file | kind | platform | size | sha256 |', '| --- | --- | --- | ---: | --- |');
    for (const a of [...manifest.artifacts].sort((x, y) => (x.path < y.path ? -1 : 1))) {
      lines.push(`| ${cell(a.path)} | ${a.kind} | ${a.platform} | ${formatBytes(a.size)} | \`${a.sha256}\` |`);
    }
  }
  // Steps that produce a report of their own (the golden gate's table) add it below.
  for (const step of run.steps) {
    const markdown = manifest.steps[step.name]?.data?.markdown;
    if (typeof markdown === 'string' && markdown.trim()) lines.push('', markdown.trim());
  }
  return `${lines.join('\n')}\n`;
}
