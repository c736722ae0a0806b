import type { Context } from '@mcp-release/pipeline';
import type { NativePolicy, Policy } from './policy.js';

/** Everything the release steps are configured with; built by the CLI or an action's index.ts. */
export interface ReleaseOptions {
  policy: Policy;
  /** The native build, or undefined to release without native artifacts. */
  native?: NativePolicy;
  /** `linux-x64`, … (the matrix leg). */
  platform: string;
  /** How plan.timestamp is chosen when a new plan is frozen. */
  /** A rehearsal (against the lab): uncommitted changes may be attested, marked as such. */
  rehearsal?: boolean;
  /** A vmaf-compatible CLI for the MCP smoke test instead of the one this release built. */
  vmafBin?: string;
  timestamp?: { source: 'clock' | 'commit' } | { source: 'explicit'; epoch: number };
  /** release-draft: replace draft assets whose digests differ instead of stopping. */
  replace?: boolean;
}

export type ReleaseContext = Context<ReleaseOptions>;
