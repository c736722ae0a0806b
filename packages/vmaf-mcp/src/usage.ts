export const BACKENDS = ['cpu', 'cuda', 'sycl', 'vulkan', 'hip', 'metal'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface UsageInfo {
  /** Long option names the usage text lists (without dashes). */
  options: string[];
  /** Backends the text mentions: `--no_<backend>` lines and the `--backend` selector's list. */
  advertised: Backend[];
  hasBackendSelector: boolean;
}

/**
 * Reads a vmaf CLI usage text. The real CLIs have no --help: they print "unrecognized option",
 * then this text, and exit 1. What the text advertises is not proof that a backend was built:
 * the lusoris fork prints every `--no_<backend>` line unconditionally.
 */
export function parseUsage(text: string): UsageInfo {
  const options = [...text.matchAll(/^\s*--([a-z][a-z0-9_-]*)/gim)].map((m) => (m[1] as string).toLowerCase());
  const advertised = new Set<Backend>();
  for (const o of options) {
    const m = /^no_(cuda|sycl|vulkan|hip|metal)$/.exec(o);
    if (m) advertised.add(m[1] as Backend);
  }
  const selector = /--backend\s+\$?\w*:?\s+.*?((?:auto|cpu|cuda|sycl|vulkan|hip|metal)(?:\|(?:auto|cpu|cuda|sycl|vulkan|hip|metal))+)/i.exec(text);
  if (selector) for (const b of (selector[1] as string).split('|')) if (b !== 'auto') advertised.add(b as Backend);
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
