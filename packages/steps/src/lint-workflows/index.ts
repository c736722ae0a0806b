export { LINT_RULES, lintRule, type LintRule, type LintRuleId, type LintSeverity } from './rules.js';
export {
  DEFAULT_RELEASE_WORKFLOWS,
  DEFAULT_WORKFLOW_DIR,
  lintWorkflowFiles,
  lintWorkflowText,
  type LintFinding,
  type LintOptions,
  type LintReport,
} from './lint.js';
export { MAX_WORKFLOW_BYTES } from './source.js';
export { LINT_TOOL_NAME, renderJson, renderSarif, renderText } from './render.js';
