/**
 * `mcp-release lint-workflows`: a policy linter for GitHub Actions workflows. Each file is read
 * and parsed once into a small model (triggers, jobs, steps, with the YAML nodes for positions);
 * the rules in rules.ts run over the models. Cross-file facts (which reusable workflows a release
 * workflow calls, which called workflows publish) come from the same models, so linting N files
 * costs N parses.
 */
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Node, Scalar, YAMLMap } from 'yaml';
import { StepError } from '../errors.js';
import {
  CREDENTIAL_KEY,
  CREDENTIAL_SECRET,
  actionPublishes,
  actionSigns,
  calledWorkflowFile,
  hasVersionComment,
  isFullSha,
  isRunToken,
  parseUses,
  publishCommands,
  repoOf,
  signsInScript,
  writtenAuthTokens,
  type ActionRef,
} from './detect.js';
import { findExpressions, referencesIn, untrustedIn, type TaintContext } from './expressions.js';
import { lintRule, type LintRuleId, type LintSeverity } from './rules.js';
import { MAX_WORKFLOW_BYTES, decodeWorkflow, parseWorkflowYaml, tooLarge, type SourceProblem, type WorkflowSource } from './source.js';

export interface LintFinding {
  ruleId: LintRuleId;
  severity: LintSeverity;
  /** Path relative to the root, with `/` separators. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
  /** What is wrong, naming the job, step and value. */
  message: string;
  /** How to fix this finding. */
  fix: string;
}

export interface LintOptions {
  /**
   * Workflow file names (or root-relative paths) allowed to publish. Default: release.yml. Local
   * reusable workflows a release workflow calls (`uses: ./.github/workflows/sign.yml`) are
   * release workflows too.
   */
  releaseWorkflows?: string[];
  /** Paths in findings are relative to this folder. Default: the working directory. */
  root?: string;
  /** Action owners exempt from SHA pinning (MR002), e.g. your own organization. Default: none, every action outside the repository is third-party. */
  trustedOwners?: string[];
  /** Largest file read, in bytes. Default 1 MiB. */
  maxBytes?: number;
}

export interface LintReport {
  /** Every file checked, relative to the root, sorted. */
  files: string[];
  /** The files treated as release workflows (allowed to publish), sorted. */
  releaseWorkflows: string[];
  /** Sorted by file, line, column, rule. */
  findings: LintFinding[];
  summary: { files: number; errors: number; warnings: number };
}

export const DEFAULT_RELEASE_WORKFLOWS: readonly string[] = ['release.yml'];
export const DEFAULT_WORKFLOW_DIR = '.github/workflows';
/** At most this many findings of one rule per script; the rest are counted in one more finding. */
const MAX_PER_SCRIPT = 50;

// ---------------------------------------------------------------------------------------------
// The model

interface ScalarAt {
  node: Scalar;
  value: string;
}

interface StepModel {
  /** `jobs.<id>.steps[i]`, for messages. */
  label: string;
  node: YAMLMap;
  uses?: ScalarAt;
  action?: ActionRef;
  run?: ScalarAt;
  with: YAMLMap | null;
  env: YAMLMap | null;
}

interface Evidence {
  offset: number;
  what: string;
}

interface JobModel {
  id: string;
  keyNode: Node;
  node: YAMLMap;
  /** A job that calls a reusable workflow (`jobs.<id>.uses`). */
  uses?: ScalarAt;
  action?: ActionRef;
  /** The local workflow file name a call job runs. */
  calls?: string;
  steps: StepModel[];
  env: YAMLMap | null;
  hasEnvironment: boolean;
  /** Publish steps in this job (not counting called workflows). */
  publishes: Evidence[];
  signs: boolean;
}

interface Trigger {
  name: string;
  keyNode: Node;
  config: unknown;
}

interface WorkflowModel {
  file: string;
  /** File name, for matching release workflows and reusable-workflow calls. */
  base: string;
  src: WorkflowSource;
  root: YAMLMap;
  triggers: Map<string, Trigger>;
  jobs: JobModel[];
  dispatchInputs: Map<string, string> | null;
}

type Loaded = { ok: true; model: WorkflowModel; findings: LintFinding[] } | { ok: false; findings: LintFinding[] };

class Collector {
  readonly findings: LintFinding[] = [];
  constructor(
    readonly file: string,
    readonly src: WorkflowSource | undefined,
  ) {}

  add(ruleId: LintRuleId, offset: number, message: string, fix: string): void {
    const pos = this.src ? this.src.position(offset) : { line: 1, column: 1 };
    this.findings.push({ ruleId, severity: lintRule(ruleId).severity, file: this.file, line: pos.line, column: pos.column, message: printable(message), fix: printable(fix) });
  }

  problem(p: SourceProblem): void {
    if (p.line !== undefined) {
      this.findings.push({ ruleId: 'MR000', severity: 'error', file: this.file, line: p.line, column: p.column ?? 1, message: printable(p.message), fix: printable(p.fix) });
    } else this.add('MR000', p.offset, p.message, p.fix);
  }
}

/** Longest message or fix kept; values quoted from a hostile file can be a megabyte long. */
const MAX_TEXT = 1000;

/**
 * Messages quote the workflow (step names, uses: values, expressions): line breaks become spaces
 * and control and bidirectional-override characters become \u escapes, so a finding cannot forge
 * lines or hide text in a terminal or a code-scanning view.
 */
export function printable(text: string): string {
  // Cut first: the line-break pattern is quadratic in the length of a run of spaces.
  const head = text.length > 2 * MAX_TEXT ? text.slice(0, 2 * MAX_TEXT) : text;
  const flat = head.replace(/\s*[\r\n]+\s*/g, ' ');
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < flat.length; i++) {
    const code = flat.charCodeAt(i);
    const hidden = (code < 0x20 && code !== 0x09) || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029 || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) || code === 0xfeff;
    if (hidden) {
      parts.push(flat.slice(from, i), `\\u${code.toString(16).padStart(4, '0')}`);
      from = i + 1;
    }
  }
  parts.push(flat.slice(from));
  const out = parts.join('');
  return out.length > MAX_TEXT ? `${out.slice(0, MAX_TEXT - 1)}…` : out;
}

function loadWorkflow(input: string | Uint8Array, file: string, maxBytes: number): Loaded {
  const decoded = decodeWorkflow(input, maxBytes);
  if (!decoded.ok) {
    const c = new Collector(file, undefined);
    c.problem(decoded.problem);
    return { ok: false, findings: c.findings };
  }
  const parsed = parseWorkflowYaml(decoded.text);
  if (!parsed.ok) {
    const c = new Collector(file, parsed.source);
    for (const p of parsed.problems) c.problem(p);
    return { ok: false, findings: c.findings };
  }
  const src = parsed.source;
  const c = new Collector(file, src);
  const shapeFix = 'a workflow is a mapping with on: (its triggers) and jobs: (a mapping of job ids to jobs)';
  const root = src.map(src.doc.contents);
  if (!root) {
    c.add('MR000', src.offsetOf(src.doc.contents), 'the file is not a YAML mapping, so it is not a workflow', shapeFix);
    return { ok: false, findings: c.findings };
  }
  const on = src.get(root, 'on');
  const jobsEntry = src.get(root, 'jobs');
  if (!on || !jobsEntry) {
    const missing = [!on ? 'on:' : '', !jobsEntry ? 'jobs:' : ''].filter(Boolean).join(' and ');
    c.add('MR000', src.offsetOf(root), `the mapping has no ${missing}, so it is not a workflow`, shapeFix);
    return { ok: false, findings: c.findings };
  }
  const jobsMap = src.map(jobsEntry.value);
  if (!jobsMap || jobsMap.items.length === 0) {
    c.add('MR000', src.offsetOf(jobsEntry.value ?? jobsEntry.keyNode), 'jobs: is not a non-empty mapping of job ids to jobs', shapeFix);
    return { ok: false, findings: c.findings };
  }
  const triggers = readTriggers(src, on.value);
  if (triggers.size === 0) {
    c.add('MR000', src.offsetOf(on.value ?? on.keyNode), 'on: names no event, so the workflow never runs', 'write on: push, on: [push, pull_request] or a mapping of events');
    return { ok: false, findings: c.findings };
  }
  const model: WorkflowModel = {
    file,
    base: path.posix.basename(file),
    src,
    root,
    triggers,
    jobs: [],
    dispatchInputs: readDispatchInputs(src, triggers.get('workflow_dispatch')),
  };
  for (const entry of src.entries(jobsMap)) {
    const node = src.map(entry.value);
    if (!node) {
      c.add('MR000', src.offsetOf(entry.value ?? entry.keyNode), `job "${entry.key}" is not a mapping`, 'write the job as a mapping (runs-on: and steps:, or uses: for a reusable workflow)');
      continue;
    }
    model.jobs.push(readJob(src, entry.key, entry.keyNode, node, c));
  }
  return { ok: true, model, findings: c.findings };
}

function readTriggers(src: WorkflowSource, value: unknown): Map<string, Trigger> {
  const out = new Map<string, Trigger>();
  const one = src.scalar(value);
  if (one) {
    if (one.value) out.set(one.value, { name: one.value, keyNode: one.node, config: null });
    return out;
  }
  for (const item of src.seq(value)?.items ?? []) {
    const s = src.scalar(item);
    if (s?.value) out.set(s.value, { name: s.value, keyNode: s.node, config: null });
  }
  for (const e of src.entries(value)) out.set(e.key, { name: e.key, keyNode: e.keyNode, config: e.value });
  return out;
}

function readDispatchInputs(src: WorkflowSource, dispatch: Trigger | undefined): Map<string, string> | null {
  if (!dispatch) return null;
  const inputs = new Map<string, string>();
  for (const e of src.entries(src.get(dispatch.config, 'inputs')?.value)) {
    inputs.set(e.key.toLowerCase(), (src.scalar(src.get(e.value, 'type')?.value)?.value ?? 'string').toLowerCase());
  }
  return inputs;
}

function readJob(src: WorkflowSource, id: string, keyNode: Node, node: YAMLMap, c: Collector): JobModel {
  const job: JobModel = {
    id,
    keyNode,
    node,
    steps: [],
    env: src.map(src.get(node, 'env')?.value),
    hasEnvironment: hasEnvironment(src, src.get(node, 'environment')?.value),
    publishes: [],
    signs: false,
  };
  const uses = src.scalar(src.get(node, 'uses')?.value);
  if (uses) {
    job.uses = uses;
    job.action = parseUses(uses.value);
    job.calls = calledWorkflowFile(job.action);
  }
  const stepsEntry = src.get(node, 'steps');
  if (stepsEntry) {
    const steps = src.seq(stepsEntry.value);
    if (!steps) {
      c.add('MR000', src.offsetOf(stepsEntry.value ?? stepsEntry.keyNode), `jobs.${id}.steps is not a list`, 'write steps: as a list of steps (- uses: … or - run: …)');
    } else {
      steps.items.forEach((item, i) => {
        const stepNode = src.map(item);
        if (!stepNode) {
          c.add('MR000', src.offsetOf(item), `jobs.${id}.steps[${i}] is not a mapping`, 'write each step as a mapping with uses: or run:');
          return;
        }
        job.steps.push(readStep(src, `jobs.${id}.steps[${i}]`, stepNode));
      });
    }
  }
  for (const step of job.steps) {
    if (step.run) {
      const commands = publishCommands(step.run.value);
      for (const m of commands.slice(0, MAX_PER_SCRIPT)) job.publishes.push({ offset: src.locate(step.run.node, step.run.value, m.index, m.text), what: `${m.what} in ${step.label}` });
      if (commands.length > MAX_PER_SCRIPT) job.publishes.push({ offset: src.offsetOf(step.run.node), what: `${commands.length - MAX_PER_SCRIPT} more publish commands in ${step.label}` });
      if (signsInScript(step.run.value)) job.signs = true;
    }
    if (step.action && step.uses) {
      const inputs = { publish: withText(src, step, 'publish'), step: withText(src, step, 'step') };
      const what = actionPublishes(step.action, inputs);
      if (what) job.publishes.push({ offset: src.offsetOf(step.uses.node), what: `${what} in ${step.label}` });
      if (actionSigns(step.action, inputs)) job.signs = true;
    }
  }
  if (job.publishes.length) job.signs = true;
  return job;
}

/** `environment: name`, or `environment: { name: … }` with a name. */
function hasEnvironment(src: WorkflowSource, value: unknown): boolean {
  const name = src.scalar(value) ?? src.scalar(src.get(value, 'name')?.value);
  return Boolean(name?.value.trim());
}

function withText(src: WorkflowSource, step: StepModel, key: string): string | undefined {
  return src.scalar(src.get(step.with, key)?.value)?.value;
}

function readStep(src: WorkflowSource, label: string, node: YAMLMap): StepModel {
  const step: StepModel = { label, node, with: src.map(src.get(node, 'with')?.value), env: src.map(src.get(node, 'env')?.value) };
  const name = src.scalar(src.get(node, 'name')?.value)?.value;
  if (name) step.label = `${label} ("${name.length > 60 ? `${name.slice(0, 57)}...` : name}")`;
  const uses = src.scalar(src.get(node, 'uses')?.value);
  if (uses) {
    step.uses = uses;
    step.action = parseUses(uses.value);
  }
  const run = src.scalar(src.get(node, 'run')?.value);
  if (run) step.run = run;
  return step;
}

// ---------------------------------------------------------------------------------------------
// The rules

interface LintContext {
  /** This file may publish (a release workflow, or a workflow one calls). */
  release: boolean;
  /** Whether a locally called workflow publishes (undefined: not among the linted files). */
  callPublishes: (file: string) => boolean | undefined;
  trustedOwners: ReadonlySet<string>;
}

const FIRING_RELEASE_TYPES = new Set(['created', 'published', 'released', 'prereleased']);

function lintModel(w: WorkflowModel, ctx: LintContext, c: Collector): void {
  const { src } = w;
  templateInjection(w, c);
  for (const job of w.jobs) {
    if (job.uses && job.action) pinning(src, job.uses, job.action, `jobs.${job.id}`, ctx, c);
    for (const step of job.steps) if (step.uses && step.action) pinning(src, step.uses, step.action, step.label, ctx, c);
  }
  workflowPermissions(w, c);
  idTokenUnneeded(w, c);
  credentials(w, c);

  // Which jobs publish: their own steps, or a called local workflow that publishes.
  const publishing: Array<{ job: JobModel; evidence: Evidence[] }> = [];
  for (const job of w.jobs) {
    const evidence = [...job.publishes];
    if (job.calls && job.uses && ctx.callPublishes(job.calls)) evidence.push({ offset: src.offsetOf(job.uses.node), what: `jobs.${job.id} calls ${job.calls}, which publishes` });
    if (evidence.length) publishing.push({ job, evidence });
  }

  if (!ctx.release) {
    for (const { evidence } of publishing) {
      for (const e of evidence) {
        c.add(
          'MR006',
          e.offset,
          `${e.what}: ${w.file} is not a release workflow, so it must not publish`,
          `move the publish into the release workflow (or a reusable workflow it calls); if ${w.base} is the release workflow, add it to releaseWorkflows`,
        );
      }
    }
  }

  const release = w.triggers.get('release');
  if (release && publishing.length && releaseTypesFire(src, release)) {
    c.add(
      'MR007',
      src.offsetOf(release.keyNode),
      `${jobList(publishing)} publish${publishing.length === 1 ? 'es' : ''} on the release: event; a release created with the GITHUB_TOKEN starts no workflow run, so this never fires (and a release made by hand would publish without the release workflow's gates)`,
      'publish from the workflow that creates the release (in the same run, after the release is drafted), and remove the release: trigger here',
    );
  }
  const schedule = w.triggers.get('schedule');
  if (schedule && publishing.length) {
    c.add(
      'MR008',
      src.offsetOf(schedule.keyNode),
      `the workflow publishes (${jobList(publishing)}) and has a schedule: trigger; scheduled runs publish unattended or pile up waiting for environment approval`,
      'remove schedule: from this workflow; run scheduled checks from a separate workflow that does not publish',
    );
  }
  for (const { job } of publishing) {
    if (job.uses || job.hasEnvironment) continue;
    c.add(
      'MR010',
      src.offsetOf(job.keyNode),
      `job "${job.id}" publishes (${job.publishes.map((e) => e.what).join('; ')}) but has no environment:, so no reviewer, branch rule or trusted-publisher binding guards it`,
      `add environment: release (or the environment your registry binds) to jobs.${job.id}, and protect that environment with required reviewers and deployment branch rules`,
    );
  }
  pullRequestTargetCheckout(w, c);
}

function jobList(publishing: Array<{ job: JobModel }>): string {
  return publishing.map((p) => `job "${p.job.id}"`).join(', ');
}

function releaseTypesFire(src: WorkflowSource, trigger: Trigger): boolean {
  const types = src.get(trigger.config, 'types')?.value;
  if (types === undefined || types === null) return true;
  const one = src.scalar(types);
  const names = one ? [one.value] : (src.seq(types)?.items ?? []).map((t) => src.scalar(t)?.value ?? '');
  return names.some((n) => FIRING_RELEASE_TYPES.has(n));
}

/**
 * One env: layer (workflow, job or step) over the layers outside it: names set from untrusted
 * text are tainted, names set from anything else shadow an outer tainted name. Each layer is
 * read once, so the cost stays linear in the file.
 */
function envLayer(src: WorkflowSource, map: YAMLMap | null, outer: TaintContext['envTaint'], dispatchInputs: TaintContext['dispatchInputs']): TaintContext['envTaint'] {
  if (!map) return outer;
  const layer = new Map<string, { name: string; carried: string } | null>();
  for (const e of src.entries(map)) {
    const value = src.scalar(e.value)?.value;
    const found = value === undefined ? [] : findExpressions(value).flatMap((x) => untrustedIn(x.body, { dispatchInputs, envTaint: outer }));
    layer.set(e.key.toLowerCase(), found.length ? { name: e.key, carried: [...new Set(found)].join(' and ') } : null);
  }
  return (name) => (layer.has(name) ? (layer.get(name) ?? undefined) : outer(name));
}

function templateInjection(w: WorkflowModel, c: Collector): void {
  const { src, dispatchInputs } = w;
  const workflowTaint = envLayer(src, src.map(src.get(w.root, 'env')?.value), () => undefined, dispatchInputs);
  for (const job of w.jobs) {
    const jobTaint = envLayer(src, job.env, workflowTaint, dispatchInputs);
    for (const step of job.steps) {
      const targets: Array<{ at: ScalarAt; where: string; script: boolean }> = [];
      if (step.run) targets.push({ at: step.run, where: `the run: script of ${step.label}`, script: false });
      if (step.action?.kind === 'remote' && repoOf(step.action.slug) === 'actions/github-script') {
        const script = src.scalar(src.get(step.with, 'script')?.value);
        if (script) targets.push({ at: script, where: `the github-script script: of ${step.label}`, script: true });
      }
      if (!targets.length) continue;
      const ctx: TaintContext = { dispatchInputs, envTaint: envLayer(src, step.env, jobTaint, dispatchInputs) };
      for (const { at, where, script } of targets) {
        let reported = 0;
        let more = 0;
        for (const expr of findExpressions(at.value)) {
          const found = untrustedIn(expr.body, ctx);
          if (!found.length) continue;
          if (reported === MAX_PER_SCRIPT) {
            more++;
            continue;
          }
          reported++;
          // ${{ env.X }} already has the value in the environment: read the variable instead.
          const envOnly = /^\s*env\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(expr.body)?.[1];
          const name = envOnly ?? envNameFor(expr.body);
          const use = script ? `process.env.${name}` : `"$${name}" (quoted)`;
          c.add(
            'MR001',
            src.locate(at.node, at.value, expr.index, '${{'),
            `${expr.text} in ${where} carries ${found.join(' and ')}; GitHub pastes it into the ${script ? 'script' : 'shell script'} before it runs, so a crafted value runs as code with this job's token`,
            envOnly ? `use ${use} in the script instead of ${expr.text}; the variable is already in the step's environment` : `pass it through env: (env: { ${name}: ${expr.text} }) and use ${use} in the script`,
          );
        }
        if (more) {
          c.add(
            'MR001',
            src.offsetOf(at.node),
            `${where} holds ${more} more untrusted \${{ }} expressions besides the ${MAX_PER_SCRIPT} listed`,
            'pass every untrusted value through env: and use the quoted variables in the script',
          );
        }
      }
    }
  }
}

/** An environment variable name for the fix text, from the expression's last property. */
function envNameFor(body: string): string {
  const chain = referencesIn(body).filter((r) => r.includes('.')).pop() ?? 'value';
  const last = chain.split('.').filter((p) => p !== '*').pop() ?? 'value';
  const name = last.replace(/[^a-z0-9]+/gi, '_').replace(/^_+|_+$/g, '').toUpperCase();
  return /^[A-Z_]/.test(name) ? name : `V_${name || 'VALUE'}`;
}

function pinning(src: WorkflowSource, uses: ScalarAt, action: ActionRef, label: string, ctx: LintContext, c: Collector): void {
  const at = src.offsetOf(uses.node);
  if (action.kind === 'local') return;
  if (action.kind === 'docker') {
    if (!action.digest) {
      c.add(
        'MR002',
        at,
        `${label} runs the Docker image ${action.image}, which is not pinned by digest; the tag can be moved to other code`,
        `pin it by digest: uses: docker://${action.image.replace(/[:@].*$/, '')}@sha256:<digest> (docker buildx imagetools inspect ${action.image} prints the digest)`,
      );
    }
    return;
  }
  const repo = repoOf(action.slug);
  if (ctx.trustedOwners.has(repo.split('/')[0] ?? '')) return;
  if (!isFullSha(action.ref) || action.expression) {
    const ref = action.ref ?? '';
    const how = action.ref === undefined ? 'has no @ref at all' : `is pinned to "${ref}", a tag or branch that can be moved`;
    const tag = ref && !action.expression ? ref : 'v<N>';
    c.add(
      'MR002',
      at,
      `${label} uses ${action.slug}, which ${how}; whoever controls ${repo} can change the code this job runs`,
      `pin ${action.slug} to the full commit SHA of the release you reviewed, with the tag as a comment: uses: ${action.slug}@<40-hex sha> # ${tag} (gh api repos/${repo}/commits/${tag} --jq .sha prints it)`,
    );
    return;
  }
  if (!hasVersionComment(src.restOfLine(uses.node))) {
    c.add(
      'MR011',
      at,
      `${label} pins ${action.slug} to ${action.ref ?? ''} with no version comment, so reviewers and update tools cannot tell which release it is`,
      `add the release tag as a comment on the same line: uses: ${uses.value} # v<version> (gh api repos/${repo}/tags --jq '.[] | select(.commit.sha=="${action.ref ?? ''}") | .name' finds it)`,
    );
  }
}

function workflowPermissions(w: WorkflowModel, c: Collector): void {
  const { src } = w;
  const entry = src.get(w.root, 'permissions');
  if (!entry) return;
  const fix = 'set permissions: {} (or contents: read) at the top of the workflow and grant each write scope only in the job that needs it (jobs.<id>.permissions)';
  const one = src.scalar(entry.value);
  if (one) {
    if (one.value === 'write-all') c.add('MR003', src.offsetOf(one.node), 'permissions: write-all at the workflow level gives every job a token that can write to the repository, packages, releases and OIDC', fix);
    return;
  }
  for (const e of src.entries(entry.value)) {
    const v = src.scalar(e.value);
    if (v?.value === 'write') {
      c.add('MR003', src.offsetOf(e.keyNode), `${e.key}: write at the workflow level gives every job, including those that run third-party code, a token with ${e.key} write access`, fix);
    }
  }
}

function idTokenUnneeded(w: WorkflowModel, c: Collector): void {
  const { src } = w;
  for (const job of w.jobs) {
    if (job.uses || job.signs) continue; // a reusable-workflow call passes the grant to the called workflow
    const entry = src.get(job.node, 'permissions');
    if (!entry) continue;
    let offset: number | undefined;
    const one = src.scalar(entry.value);
    if (one?.value === 'write-all') offset = src.offsetOf(one.node);
    const idToken = src.get(entry.value, 'id-token');
    if (idToken && src.scalar(idToken.value)?.value === 'write') offset = src.offsetOf(idToken.keyNode);
    if (offset === undefined) continue;
    c.add(
      'MR004',
      offset,
      `job "${job.id}" can mint an OIDC token (id-token: write) but neither signs nor publishes, so a compromised step there could sign or publish as your release workflow`,
      `remove id-token: write from jobs.${job.id}.permissions; grant it only to the job that signs or publishes`,
    );
  }
}

function credentials(w: WorkflowModel, c: Collector): void {
  const { src } = w;
  const fix =
    'delete the token secret and publish with trusted publishing (OIDC): grant id-token: write to the publish job, bind the package to this workflow and its environment on the registry, and publish without a token';
  const check = (map: unknown, where: string): void => {
    for (const e of src.entries(map)) {
      const value = src.scalar(e.value)?.value ?? '';
      if (!value.trim() || isRunToken(value)) continue;
      const secret = CREDENTIAL_SECRET.exec(value)?.[1];
      if (CREDENTIAL_KEY.test(e.key) || secret) {
        const from = secret ? `the long-lived secret ${secret}` : /\bsecrets\s*\./i.test(value) ? 'a stored secret' : 'a value written in the workflow';
        c.add('MR005', src.offsetOf(e.keyNode), `${where} sets ${e.key} from ${from}: a long-lived registry credential that can be stolen and replayed`, fix);
      }
    }
  };
  check(src.get(w.root, 'env')?.value, 'the workflow env:');
  for (const job of w.jobs) {
    check(job.env, `jobs.${job.id}.env`);
    check(src.get(job.node, 'with')?.value, `jobs.${job.id}.with`);
    check(src.get(job.node, 'secrets')?.value, `jobs.${job.id}.secrets`);
    for (const step of job.steps) {
      check(step.env, `${step.label} env:`);
      check(step.with, `${step.label} with:`);
      if (step.run) {
        for (const m of writtenAuthTokens(step.run.value).slice(0, MAX_PER_SCRIPT)) {
          c.add('MR005', src.locate(step.run.node, step.run.value, m.index, m.text), `${step.label} writes a registry _authToken: a long-lived credential on disk for the rest of the job`, fix);
        }
      }
    }
  }
}

const HEAD_CHECKOUT = ['github.event.pull_request.head.sha', 'github.event.pull_request.head.ref', 'github.head_ref', 'github.event.pull_request.merge_commit_sha', 'github.event.pull_request.head.repo.full_name'];

function pullRequestTargetCheckout(w: WorkflowModel, c: Collector): void {
  if (!w.triggers.has('pull_request_target')) return;
  const { src } = w;
  for (const job of w.jobs) {
    for (const step of job.steps) {
      if (step.action?.kind !== 'remote' || repoOf(step.action.slug) !== 'actions/checkout') continue;
      for (const key of ['ref', 'repository']) {
        const v = src.scalar(src.get(step.with, key)?.value);
        if (!v) continue;
        const refs = findExpressions(v.value).flatMap((e) => referencesIn(e.body));
        const head = refs.find((r) => HEAD_CHECKOUT.includes(r)) ?? (/refs\/pull\//.test(v.value) ? 'refs/pull/…' : undefined);
        if (!head) continue;
        c.add(
          'MR009',
          src.offsetOf(v.node),
          `${step.label} checks out the pull request's code (${key}: ${v.value}) in a pull_request_target workflow, which runs with this repository's secrets and a write token`,
          'run the contributor\'s code in a pull_request workflow (no secrets, read-only token); in pull_request_target check out only the base branch, and never build or run the pull request there',
        );
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

function compareFindings(a: LintFinding, b: LintFinding): number {
  return cmp(a.file, b.file) || a.line - b.line || a.column - b.column || cmp(a.ruleId, b.ruleId) || cmp(a.message, b.message) || cmp(a.fix, b.fix);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function makeReport(files: string[], release: string[], findings: LintFinding[]): LintReport {
  const seen = new Set<string>();
  const unique = findings.sort(compareFindings).filter((f) => {
    const key = `${f.file}\0${f.line}\0${f.column}\0${f.ruleId}\0${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return {
    files: [...files].sort(cmp),
    releaseWorkflows: [...release].sort(cmp),
    findings: unique,
    summary: {
      files: files.length,
      errors: unique.filter((f) => f.severity === 'error').length,
      warnings: unique.filter((f) => f.severity === 'warning').length,
    },
  };
}

function maxBytesOf(options: LintOptions): number {
  const max = options.maxBytes ?? MAX_WORKFLOW_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new StepError('LINT_OPTIONS_INVALID', `maxBytes is ${String(max)}, not a positive whole number of bytes`, { hint: `leave maxBytes unset for the default (${MAX_WORKFLOW_BYTES} bytes)` });
  }
  return max;
}

function releaseNames(options: LintOptions): Set<string> {
  const names = options.releaseWorkflows ?? [...DEFAULT_RELEASE_WORKFLOWS];
  for (const n of names) {
    if (typeof n !== 'string' || !n.trim()) {
      throw new StepError('LINT_OPTIONS_INVALID', `releaseWorkflows holds ${JSON.stringify(n)}, which is not a workflow file name`, {
        hint: 'name release workflows by file name (release.yml) or by path relative to the root (.github/workflows/release.yml)',
      });
    }
  }
  return new Set(names.map((n) => n.trim().replace(/\\/g, '/')));
}

function displayPath(file: string, root: string): string {
  const rel = path.isAbsolute(file) ? path.relative(root, file) : path.normalize(file);
  return rel.split(path.sep).join('/');
}

/** Lints one workflow's text (or bytes). Cross-file facts (called workflows) are unknown here. */
export function lintWorkflowText(text: string | Uint8Array, file: string, options: LintOptions = {}): LintReport {
  const root = path.resolve(options.root ?? process.cwd());
  const shown = displayPath(file, root);
  const names = releaseNames(options);
  const loaded = loadWorkflow(text, shown, maxBytesOf(options));
  if (!loaded.ok) return makeReport([shown], [], loaded.findings);
  const release = names.has(loaded.model.base) || names.has(shown);
  const c = new Collector(shown, loaded.model.src);
  lintModel(loaded.model, { release, callPublishes: () => undefined, trustedOwners: new Set((options.trustedOwners ?? []).map((o) => o.toLowerCase())) }, c);
  return makeReport([shown], release ? [shown] : [], [...loaded.findings, ...c.findings]);
}

/**
 * Lints workflow files. Each path is a file, or a folder meaning every *.yml / *.yaml directly in
 * it (sorted). No paths means .github/workflows under the root. Relative paths are resolved
 * against the working directory; findings name files relative to `options.root`.
 */
export async function lintWorkflowFiles(paths: string[], options: LintOptions = {}): Promise<LintReport> {
  const root = path.resolve(options.root ?? process.cwd());
  const names = releaseNames(options);
  const maxBytes = maxBytesOf(options);
  const trustedOwners = new Set((options.trustedOwners ?? []).map((o) => o.toLowerCase()));
  const files = await collectWorkflowFiles(paths.length ? paths : [path.join(root, DEFAULT_WORKFLOW_DIR)]);

  const shown: string[] = [];
  const findings: LintFinding[] = [];
  const models: WorkflowModel[] = [];
  for (const file of files) {
    const display = displayPath(file, root);
    shown.push(display);
    const { bytes, size } = await readCapped(file, maxBytes);
    if (size > maxBytes) {
      const c = new Collector(display, undefined);
      c.problem(tooLarge(size, maxBytes));
      findings.push(...c.findings);
      continue;
    }
    const loaded = loadWorkflow(bytes, display, maxBytes);
    findings.push(...loaded.findings);
    if (loaded.ok) models.push(loaded.model);
  }

  const byBase = new Map<string, WorkflowModel[]>();
  for (const m of models) byBase.set(m.base, [...(byBase.get(m.base) ?? []), m]);

  // Release workflows: the named ones, and every local workflow they call, transitively.
  const release = new Set<WorkflowModel>();
  const queue = models.filter((m) => names.has(m.base) || names.has(m.file));
  while (queue.length) {
    const m = queue.pop() as WorkflowModel;
    if (release.has(m)) continue;
    release.add(m);
    for (const job of m.jobs) if (job.calls) queue.push(...(byBase.get(job.calls) ?? []));
  }

  // Whether a workflow publishes, itself or through the local workflows it calls (cycles end as "no").
  const publishes = new Map<WorkflowModel, boolean>();
  const visiting = new Set<WorkflowModel>();
  const publishesVia = (m: WorkflowModel): boolean => {
    const known = publishes.get(m);
    if (known !== undefined) return known;
    if (visiting.has(m)) return false;
    visiting.add(m);
    const result = m.jobs.some((j) => j.publishes.length > 0 || (j.calls !== undefined && (byBase.get(j.calls) ?? []).some(publishesVia)));
    visiting.delete(m);
    publishes.set(m, result);
    return result;
  };
  const callPublishes = (file: string): boolean | undefined => {
    const targets = byBase.get(file);
    return targets ? targets.some(publishesVia) : undefined;
  };

  for (const m of models) {
    const c = new Collector(m.file, m.src);
    lintModel(m, { release: release.has(m), callPublishes, trustedOwners }, c);
    findings.push(...c.findings);
  }
  return makeReport(
    shown,
    [...release].map((m) => m.file),
    findings,
  );
}

async function collectWorkflowFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (file: string): void => {
    if (!seen.has(file)) {
      seen.add(file);
      out.push(file);
    }
  };
  for (const p of paths) {
    const abs = path.resolve(p);
    let info;
    try {
      info = await stat(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new StepError('LINT_PATH_MISSING', `cannot read ${p}: ${code === 'ENOENT' ? 'no such file or folder' : (code ?? (err as Error).message)}`, {
        cause: err,
        hint: `pass workflow files or folders that exist (the default is ${DEFAULT_WORKFLOW_DIR} under the repository root)`,
      });
    }
    if (info.isFile()) {
      add(abs);
    } else if (info.isDirectory()) {
      let entries;
      try {
        entries = await readdir(abs, { withFileTypes: true });
      } catch (err) {
        throw new StepError('LINT_READ_FAILED', `cannot list the folder ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
          cause: err,
          hint: 'check the folder permissions, or pass the workflow files one by one',
        });
      }
      const names = entries.map((e) => e.name).filter((n) => /\.ya?ml$/i.test(n)).sort(cmp);
      for (const name of names) {
        const file = path.join(abs, name);
        // Symlinks count when they point at a file; folders named *.yml do not.
        if ((await stat(file).catch(() => undefined))?.isFile()) add(file);
      }
    } else {
      throw new StepError('LINT_PATH_INVALID', `${p} is neither a file nor a folder`, { hint: 'pass workflow files (*.yml) or folders that hold them' });
    }
  }
  if (out.length === 0) {
    throw new StepError('LINT_NO_WORKFLOWS', `no workflow files (*.yml, *.yaml) in ${paths.join(', ')}`, {
      hint: `pass the folder that holds the workflows (${DEFAULT_WORKFLOW_DIR}) or the files themselves; nothing was checked`,
    });
  }
  return out;
}

/** Reads at most maxBytes + 1 bytes: enough to know a file is too large without reading it all. */
async function readCapped(file: string, maxBytes: number): Promise<{ bytes: Uint8Array; size: number }> {
  let handle;
  try {
    handle = await open(file, 'r');
    const info = await handle.stat();
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
    const buf = Buffer.alloc(Math.min(info.size, maxBytes) + 1);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // A file that grew past the cap after stat still counts as too large.
    return { bytes: buf.subarray(0, Math.min(filled, maxBytes)), size: Math.max(info.size, filled) };
  } catch (err) {
    throw new StepError('LINT_READ_FAILED', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
      hint: 'check that the file exists and is readable, then run lint-workflows again',
    });
  } finally {
    await handle?.close();
  }
}

