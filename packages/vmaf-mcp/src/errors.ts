import { CodedError } from '@mcp-release/manifest/errors';

/** Errors the server turns into MCP error results: a code, what happened, and the fix. */
export class VmafMcpError extends CodedError {}

export function describe(err: unknown): string {
  if (err instanceof CodedError) return `${err.code}: ${err.message}${err.details.length ? `\n${err.details.join('\n')}` : ''}${err.hint ? `\nfix: ${err.hint}` : ''}`;
  return `INTERNAL: ${err instanceof Error ? err.message : String(err)}`;
}
