export { ACTION_PINS, DEFAULT_NODE_VERSION, TOOLKIT_ACTIONS, TOOLKIT_REPOSITORY, type ActionPin, type PinnedAction, type ToolkitAction } from './pins.js';
export {
  WORKFLOW_TEMPLATES,
  findTemplatesDir,
  isToolkitRepository,
  renderTemplate,
  renderTemplates,
  resolveRenderOptions,
  templateValues,
  type RenderOptions,
  type RenderedWorkflows,
  type ResolvedRenderOptions,
  type ToolkitRef,
  type WorkflowTemplate,
} from './render.js';
export {
  RELEASE_ENVIRONMENT,
  RELEASE_WORKFLOW,
  SIGNING_WORKFLOW,
  signerIdentity,
  starterPolicy,
  type StarterPolicyOptions,
} from './starter-policy.js';
export { WORKFLOW_DIR, initRepository, type InitOptions, type InitResult } from './init.js';
export { mergeManifests, mergeReleaseParts, type MergePartsInput, type MergePartsResult } from './merge.js';
