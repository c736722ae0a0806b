/**
 * `${{ }}` expressions: where they are in a string, which context properties they read, and
 * whether a property holds text that someone outside the repository's writers controls.
 */

export interface Expression {
  /** Index of `${{` in the string. */
  index: number;
  /** The whole `${{ … }}` text. */
  text: string;
  /** What is between the braces. */
  body: string;
}

/** Every `${{ … }}` in a string. A `}}` inside a '…' string literal does not close the expression. */
export function findExpressions(value: string): Expression[] {
  const out: Expression[] = [];
  let from = 0;
  for (;;) {
    const start = value.indexOf('${{', from);
    if (start === -1) return out;
    let i = start + 3;
    let inString = false;
    let end = -1;
    for (; i < value.length; i++) {
      const c = value[i];
      if (c === "'") inString = !inString; // '' inside a literal toggles twice: still inside
      else if (!inString && c === '}' && value[i + 1] === '}') {
        end = i + 2;
        break;
      }
    }
    if (end === -1) return out;
    out.push({ index: start, text: value.slice(start, end), body: value.slice(start + 3, end - 2) });
    from = end;
  }
}

/**
 * The context property chains an expression body reads, normalized: lower case, `a['b']` as
 * `a.b`, `a[0]` and `a[*]` as `a.*`. String literals and function names are not references
 * (function names come out as one-segment chains and match nothing with two or more segments).
 */
export function referencesIn(body: string): string[] {
  const normalized = body
    .replace(/\[\s*'((?:[^']|'')*)'\s*\]/g, (_m, name: string) => `.${name.replace(/''/g, "'")}`)
    .replace(/\[\s*(?:\d+|\*)\s*\]/g, '.*')
    .replace(/'(?:[^']|'')*'/g, "''")
    // Two linear passes; /\s*\.\s*/ rescans a long run of spaces from each of its characters.
    .replace(/\s+/g, ' ')
    .replace(/ ?\. ?/g, '.')
    .toLowerCase();
  return [...normalized.matchAll(/(?<![\w.*-])[a-z_][a-z0-9_-]*(?:\.(?:[a-z0-9_-]+|\*))*/g)].map((m) => m[0]);
}

/** Event properties anyone who can open an issue, a pull request, a comment or push a branch can set. */
const UNTRUSTED: ReadonlyArray<readonly [string, string]> = [
  ['github.event.issue.title', 'an issue title'],
  ['github.event.issue.body', 'an issue body'],
  ['github.event.pull_request.title', 'a pull request title'],
  ['github.event.pull_request.body', 'a pull request body'],
  ['github.event.pull_request.head.ref', "the pull request's branch name"],
  ['github.event.pull_request.head.label', "the pull request's head label"],
  ['github.event.pull_request.head.repo.default_branch', "the fork's default branch name"],
  ['github.event.comment.body', 'a comment'],
  ['github.event.review.body', 'a review'],
  ['github.event.review_comment.body', 'a review comment'],
  ['github.event.discussion.title', 'a discussion title'],
  ['github.event.discussion.body', 'a discussion body'],
  ['github.event.commits.*.message', 'a commit message'],
  ['github.event.commits.*.author.name', 'a commit author name'],
  ['github.event.commits.*.author.email', 'a commit author email'],
  ['github.event.head_commit.message', 'a commit message'],
  ['github.event.head_commit.author.name', 'a commit author name'],
  ['github.event.head_commit.author.email', 'a commit author email'],
  ['github.event.pages.*.page_name', 'a wiki page name'],
  ['github.event.workflow_run.head_branch', "the triggering run's branch name"],
  ['github.event.workflow_run.head_commit.message', "the triggering run's commit message"],
  ['github.head_ref', "the pull request's branch name"],
];

function segmentsMatch(chain: string[], template: string[], n: number): boolean {
  for (let i = 0; i < n; i++) {
    const c = chain[i];
    const t = template[i];
    if (t !== '*' && c !== '*' && c !== t) return false;
  }
  return true;
}

export interface TaintContext {
  /** Declared workflow_dispatch inputs (lower-case name → type), or null when the workflow has no workflow_dispatch trigger. */
  dispatchInputs: ReadonlyMap<string, string> | null;
  /** For an env variable (lower-case name) whose value is built from untrusted text: its name as written and what it carries. */
  envTaint: (name: string) => { name: string; carried: string } | undefined;
}

/** Input types whose values cannot carry shell or script syntax. */
const SAFE_INPUT_TYPES = new Set(['boolean', 'number']);

/** What untrusted text a reference chain carries, or undefined when it is not known to be untrusted. */
export function untrustedSource(chain: string, ctx: TaintContext): string | undefined {
  const parts = chain.split('.');
  for (const [template, what] of UNTRUSTED) {
    const t = template.split('.');
    if (parts.length >= t.length && segmentsMatch(parts, t, t.length)) return what;
    // A whole object that contains such text (toJSON(github.event.issue), join(github.event.commits.*.message)).
    if (parts.length >= 2 && parts.length < t.length && segmentsMatch(parts, t, parts.length)) return `${chain} (which holds ${what})`;
  }
  if (ctx.dispatchInputs) {
    const input = parts[0] === 'inputs' ? parts.slice(1) : parts[0] === 'github' && parts[1] === 'event' && parts[2] === 'inputs' ? parts.slice(3) : undefined;
    if (input) {
      const name = input[0];
      if (name === undefined || name === '*') {
        const open = [...ctx.dispatchInputs].filter(([, type]) => !SAFE_INPUT_TYPES.has(type));
        if (open.length || ctx.dispatchInputs.size === 0) return 'the workflow_dispatch inputs (whoever runs the workflow types them)';
      } else if (!SAFE_INPUT_TYPES.has(ctx.dispatchInputs.get(name) ?? 'string')) {
        return `the workflow_dispatch input "${name}" (whoever runs the workflow types it)`;
      }
    }
  }
  if (parts[0] === 'env' && parts[1] !== undefined) {
    const tainted = ctx.envTaint(parts[1]);
    if (tainted) return `env.${tainted.name} (set from ${tainted.carried})`;
  }
  return undefined;
}

/** The untrusted sources an expression body reads (deduplicated, in order). */
export function untrustedIn(body: string, ctx: TaintContext): string[] {
  const found: string[] = [];
  for (const chain of referencesIn(body)) {
    const what = untrustedSource(chain, ctx);
    if (what && !found.includes(what)) found.push(what);
  }
  return found;
}
