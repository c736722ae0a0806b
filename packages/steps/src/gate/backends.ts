import type { BackendStatus } from './logic.js';
import { GPU_BACKENDS, type CliUsage } from './scorers.js';

/** Shared libraries that prove a GPU backend is linked in. */
export const BACKEND_LIBRARIES: Record<string, RegExp> = {
  cuda: /^lib(cuda|cudart|nvrtc)\b/,
  sycl: /^lib(sycl|ze_loader|ur_loader)\b/,
  vulkan: /^libvulkan\b/,
  hip: /^lib(amdhip64|hiprtc)\b/,
  metal: /Metal\.framework/,
};

export interface BackendPolicy {
  /** Backends that must be available, or the gate fails. Default: [cpu]. */
  required?: string[];
  /** Backends scored when available, listed as skipped (with the reason) when not. */
  optional?: string[];
}

export interface BackendEvidence {
  /** The vmaf CLI scorer's usage, or undefined when there is none. */
  usage?: CliUsage;
  /** The build's recorded meson options (manifest.native.<platform>.options), when the CLI is this release's own. */
  nativeOptions?: Record<string, unknown>;
  /** Libraries the CLI is linked against (`ldd`). */
  linked: string[];
}

export { linkedLibraries, parseLdd } from '@mcp-release/pipeline';

function optionEnabled(value: unknown): boolean {
  return value === true || value === 'true' || value === 'enabled';
}

/**
 * Which backends the gate may run. A GPU backend counts only with evidence: the build's recorded
 * meson option enables it, or its libraries are linked. What the usage text lists is never
 * enough (the lusoris fork prints every `--no_<gpu>` line whatever was compiled in): a backend
 * advertised there without evidence is "not built" and never run.
 */
export function resolveBackends(policy: BackendPolicy, evidence: BackendEvidence): BackendStatus[] {
  const required = policy.required ?? ['cpu'];
  const wanted = [...new Set([...required, ...(policy.optional ?? [])])];
  return wanted.map((backend): BackendStatus => {
    const isRequired = required.includes(backend);
    const advertised = evidence.usage?.advertised.includes(backend) ?? false;
    const optionName = `enable_${backend}`;
    const recorded = evidence.nativeOptions && optionName in evidence.nativeOptions ? `${optionName}=${String(evidence.nativeOptions[optionName])}` : null;
    const linked = BACKEND_LIBRARIES[backend] ? evidence.linked.filter((l) => (BACKEND_LIBRARIES[backend] as RegExp).test(l)) : [];
    const ev = { recordedOption: recorded, linked, advertised };
    const missingState = isRequired ? 'missing' : 'skipped';
    if (backend === 'cpu') {
      return evidence.usage
        ? { backend, state: 'available', required: isRequired, reason: 'the vmaf CLI scores on the CPU', evidence: ev }
        : { backend, state: missingState, required: isRequired, reason: 'no vmaf CLI scorer is configured', evidence: ev };
    }
    if (!(GPU_BACKENDS as readonly string[]).includes(backend)) {
      return { backend, state: missingState, required: isRequired, reason: `unknown backend (known: cpu, ${GPU_BACKENDS.join(', ')})`, evidence: ev };
    }
    const built = (evidence.nativeOptions !== undefined && optionEnabled(evidence.nativeOptions[optionName])) || linked.length > 0;
    const proof = linked.length ? `linked against ${linked.join(', ')}` : `recorded meson option ${recorded}`;
    const against = [recorded ? `recorded meson option ${recorded}` : 'no recorded meson option', 'no library linked'].join(', ');
    if (!evidence.usage) return { backend, state: missingState, required: isRequired, reason: 'no vmaf CLI scorer is configured', evidence: ev };
    if (built && !evidence.usage.options.includes('backend')) {
      return { backend, state: missingState, required: isRequired, reason: `built (${proof}) but the CLI has no --backend selector to run it`, evidence: ev };
    }
    if (built) return { backend, state: 'available', required: isRequired, reason: proof, evidence: ev };
    if (advertised) return { backend, state: 'not-built', required: isRequired, reason: `advertised in the usage text only: not built (${against})`, evidence: ev };
    return { backend, state: missingState, required: isRequired, reason: `not built (${against})`, evidence: ev };
  });
}
