/**
 * Coded errors. Every package has one error class derived from CodedError, with a stable string
 * `code`, a `hint` that tells the user the command or setting that fixes the problem, and the
 * underlying `cause` when there is one.
 */
export interface CodedErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra lines shown under the message (a log excerpt, a list of bad fields). */
  details?: string[];
}

export class CodedError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: string[];

  constructor(code: string, message: string, options: CodedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }

  toJSON(): { code: string; message: string; hint?: string; details?: string[] } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details.length ? { details: this.details } : {}),
    };
  }
}

export class ManifestError extends CodedError {}

export function isCodedError(err: unknown): err is CodedError {
  return err instanceof CodedError;
}

/** Renders any error for a person: code, message, details and the fix. Never a bare stack. */
export function formatError(err: unknown): string {
  if (isCodedError(err)) {
    const lines = [`error ${err.code}: ${err.message}`];
    for (const d of err.details) lines.push(`  | ${d}`);
    if (err.hint) lines.push(`  fix: ${err.hint}`);
    return lines.join('\n');
  }
  const message = err instanceof Error ? err.message : String(err);
  return `error INTERNAL: ${message}\n  fix: this is a bug in mcp-release; re-run with MCP_RELEASE_DEBUG=1 for the stack and report it`;
}
