import { CodedError } from '@mcp-release/manifest';

/** Bad command-line input; exits with status 2. */
export class CliError extends CodedError {}
