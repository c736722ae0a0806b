import { CodedError } from '@mcp-release/manifest';

export class StepError extends CodedError {}
