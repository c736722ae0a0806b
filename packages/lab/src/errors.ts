import { CodedError } from '@mcp-release/manifest/errors';

export class LabError extends CodedError {}
