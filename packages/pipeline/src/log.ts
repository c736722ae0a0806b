/** Where the runner and the steps report what they do. Progress goes to stderr; results to stdout. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  /** A progress line for long work; throttled by the caller. */
  progress(message: string): void;
}

export function streamLogger(write: (text: string) => void = (t) => process.stderr.write(t)): Logger {
  return {
    info: (m) => write(`${m}\n`),
    warn: (m) => write(`warning: ${m}\n`),
    progress: (m) => write(`  … ${m}\n`),
  };
}

export function silentLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
    progress: (m) => lines.push(`… ${m}`),
  };
}

/** Human-readable byte counts for progress lines. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}
