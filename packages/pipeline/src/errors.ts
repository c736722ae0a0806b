import { CodedError, type CodedErrorOptions } from '@mcp-release/manifest/errors';

export class PipelineError extends CodedError {}

/**
 * Skip-as-typed-error: a step's `run` may throw this when it discovers, part-way, that it has
 * nothing to do. The runner records the step as skipped with the reason; it is not a failure.
 */
export class StepSkipped extends PipelineError {
  constructor(reason: string, options: CodedErrorOptions = {}) {
    super('STEP_SKIPPED', reason, options);
  }
}
