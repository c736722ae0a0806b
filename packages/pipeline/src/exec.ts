import { spawn } from 'node:child_process';
import { PipelineError } from './errors.js';

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line of output, stdout and stderr alike (progress, logs). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
  /** Keep at most this many bytes of each stream (the tail). Default 4 MiB. */
  maxBuffer?: number;
  input?: string;
}

export interface ExecResult {
  command: string;
  args: string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export type Exec = (command: string, args: string[], options?: ExecOptions) => Promise<ExecResult>;

/** A hint for commands the toolkit needs, used when one is not installed. */
const INSTALL_HINTS: Record<string, string> = {
  meson: 'install meson and ninja (Debian/Ubuntu: apt-get install meson ninja-build; macOS: brew install meson ninja), or run `npm run bootstrap`',
  ninja: 'install ninja (Debian/Ubuntu: apt-get install ninja-build; macOS: brew install ninja), or run `npm run bootstrap`',
  git: 'install git and run inside a clone of the repository',
  npm: 'install Node.js with npm 11 or newer',
  readelf: 'install binutils (Debian/Ubuntu: apt-get install binutils)',
};

/**
 * Runs a program without a shell (arguments are never interpreted), asynchronously so that
 * in-process servers keep serving, and keeps the tail of its output for error messages.
 */
export const exec: Exec = (command, args, options = {}) =>
  new Promise((resolve, reject) => {
    const max = options.maxBuffer ?? 4 * 1024 * 1024;
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    let timedOut = false;
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    for (const name of ['stdout', 'stderr'] as const) {
      child[name]?.setEncoding('utf8');
      child[name]?.on('data', (chunk: string) => {
        out[name] += chunk;
        if (out[name].length > max) out[name] = out[name].slice(out[name].length - max);
        if (options.onLine) {
          const text = partial[name] + chunk;
          const lines = text.split(/\r?\n|\r/);
          partial[name] = lines.pop() ?? '';
          for (const line of lines) options.onLine(line, name);
        }
      });
    }
    if (options.input !== undefined) child.stdin?.end(options.input);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (err.code === 'ENOENT') {
        reject(
          new PipelineError('COMMAND_NOT_FOUND', `the command \`${command}\` was not found on PATH`, {
            hint: INSTALL_HINTS[command] ?? `install ${command} or put it on PATH`,
            cause: err,
          }),
        );
      } else reject(new PipelineError('COMMAND_FAILED_TO_START', `could not start \`${command}\`: ${err.message}`, { cause: err }));
    });
    child.on('close', (exitCode, signal) => {
      if (timer) clearTimeout(timer);
      for (const name of ['stdout', 'stderr'] as const) if (partial[name] && options.onLine) options.onLine(partial[name], name);
      resolve({ command, args, exitCode, signal, stdout: out.stdout, stderr: out.stderr, timedOut });
    });
  });

/** The last `n` non-empty lines of a text, for error excerpts. */
export function tailLines(text: string, n: number): string[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .slice(-n);
}

/** Runs and requires exit status 0, else throws a coded error with the output tail. */
export async function execChecked(run: Exec, command: string, args: string[], options: ExecOptions & { code: string; what: string; hint: string }): Promise<ExecResult> {
  const result = await run(command, args, options);
  if (result.exitCode !== 0) {
    const status = result.timedOut ? 'timed out' : result.signal ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
    throw new PipelineError(options.code, `${options.what}: \`${[command, ...args].join(' ')}\` ${status}`, {
      hint: options.hint,
      details: tailLines(`${result.stdout}\n${result.stderr}`, 20),
    });
  }
  return result;
}

/** Library names from `ldd` output (what a binary links against). */
export function parseLdd(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n && n !== 'statically' && !n.startsWith('/'))
    .map((n) => n.replace(/:$/, ''));
}

/** The libraries `ldd` shows for a binary; none when ldd is missing or refuses (a static or foreign binary). */
export async function linkedLibraries(binary: string, run: Exec, env: NodeJS.ProcessEnv): Promise<string[]> {
  const r = await run('ldd', [binary], { env, timeoutMs: 20_000 }).catch(() => undefined);
  return r && r.exitCode === 0 ? parseLdd(r.stdout) : [];
}
