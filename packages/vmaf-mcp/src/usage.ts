export const BACKENDS = ['cpu', 'cuda', 'sycl', 'vulkan', 'hip', 'metal'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface UsageInfo {
  /** Long option names the usage text lists (without dashes). */
  options: string[];
  /** Backends the text mentions: `--no_<backend>` lines and the `--backend` selector's list. */
  advertised: Backend[];
  hasBackendSelector: boolean;
}

/** Usage texts are a few kilobytes; only this much of one is read, so a runaway binary's output stays cheap to scan. */
export const MAX_USAGE_CHARS = 64 * 1024;

const BACKEND_LIST = /((?:auto|cpu|cuda|sycl|vulkan|hip|metal)(?:\|(?:auto|cpu|cuda|sycl|vulkan|hip|metal))+)/gi;

/**
 * The list of the `--backend $name: … auto|cpu|…` selector line. Each line is scanned once: after
 * the first `--backend` with its `$name:` part, the list is searched for in the rest of that line
 * only (a backtracking pattern over the whole text is quadratic in hostile output).
 */
function selectorList(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const option = /--backend/gi;
    for (let m = option.exec(line); m; m = option.exec(line)) {
      const name = /\s+\$?\w*:?\s+/y;
      name.lastIndex = m.index + m[0].length;
      if (!name.exec(line)) continue;
      BACKEND_LIST.lastIndex = name.lastIndex;
      const list = BACKEND_LIST.exec(line);
      if (list) return list[1];
      break; // a later --backend on this line has even less of the line after it
    }
  }
  return undefined;
}

/**
 * Reads a vmaf CLI usage text. The real CLIs have no --help: they print "unrecognized option",
 * then this text, and exit 1. What the text advertises is not proof that a backend was built:
 * the lusoris fork prints every `--no_<backend>` line unconditionally.
 */
export function parseUsage(usageText: string): UsageInfo {
  const text = usageText.slice(0, MAX_USAGE_CHARS);
  // leading blanks of the option's own line only: `^\s*` would rescan every following blank line
  const options = [...text.matchAll(/^[^\S\n\r\u2028\u2029]*--([a-z][a-z0-9_-]*)/gim)].map((m) => (m[1] as string).toLowerCase());
  const advertised = new Set<Backend>();
  for (const o of options) {
    const m = /^no_(cuda|sycl|vulkan|hip|metal)$/.exec(o);
    if (m) advertised.add(m[1] as Backend);
  }
  const selector = selectorList(text);
  if (selector) for (const b of selector.split('|')) if (b !== 'auto') advertised.add(b as Backend);
  return { options: [...new Set(options)], advertised: BACKENDS.filter((b) => advertised.has(b)), hasBackendSelector: options.includes('backend') };
}

/** Shared libraries that prove a GPU backend is linked in, by backend. */
export const BACKEND_LIBRARIES: Record<Exclude<Backend, 'cpu'>, RegExp> = {
  cuda: /^lib(cuda|cudart|nvrtc)\b/,
  sycl: /^lib(sycl|ze_loader|ur_loader)\b/,
  vulkan: /^libvulkan\b/,
  hip: /^lib(amdhip64|hiprtc)\b/,
  metal: /Metal\.framework/,
};

export { parseLdd } from '@mcp-release/pipeline/exec';
