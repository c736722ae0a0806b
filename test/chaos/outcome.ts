import type { Diagnosis, Outcome } from './cases.js';

/** The last coded error a CLI run printed (`error CODE: message`), and whether a `fix:` line follows it. */
export interface PrintedError {
  code: string;
  message: string;
  hasFix: boolean;
}

export function lastError(stderr: string): PrintedError | undefined {
  const lines = stderr.split('\n');
  for (let i = lines.length - 1; i >= 0; i -= 1) {
    const m = /^error ([A-Z][A-Z0-9_]+): (.*)$/.exec(lines[i] as string);
    if (!m) continue;
    let hasFix = false;
    for (let j = i + 1; j < lines.length && /^ {2}/.test(lines[j] as string); j += 1) if (/^ {2}fix: \S/.test(lines[j] as string)) hasFix = true;
    return { code: m[1] as string, message: m[2] as string, hasFix };
  }
  return undefined;
}

/** What was seen of one case's release run and what came after it. */
export interface Observation {
  /** The run did not end within the case's limit and was killed for it. */
  hung: boolean;
  exitCode: number | null;
  /** The campaign killed the run on purpose, at the case's kill point. */
  killed: boolean;
  error?: PrintedError;
  /** What was public right after the run (publicParts); empty when nothing was. */
  publicAfter: string[];
  /** `resume` ran after the fault was cleared, and exited 0. */
  resumed?: boolean;
}

/** Whether a printed error is the declared diagnosis: same code, the message says what it must, and a fix is given. */
export function diagnosed(error: PrintedError | undefined, declared: Diagnosis | undefined): boolean {
  if (!error || !declared) return false;
  return error.code === declared.code && (!declared.message || declared.message.test(error.message)) && error.hasFix;
}

/**
 * The outcome as observed, in the words of the declared outcomes where it is one of them; a case
 * passes only when this equals its declaration (and the final state checks out).
 */
export function classify(o: Observation, declared: Diagnosis | undefined): Outcome | 'hung' | 'resume-fails' | `fails: ${string}` {
  if (o.hung) return 'hung';
  if (!o.killed && o.exitCode === 0) return 'completes';
  if (!o.killed) {
    if (!diagnosed(o.error, declared)) return `fails: ${o.error ? o.error.code : `exit ${o.exitCode ?? 'signal'}, no coded error`}`;
    if (o.publicAfter.length === 0) return 'nothing-public';
  }
  return o.resumed ? 'resume-completes' : 'resume-fails';
}
