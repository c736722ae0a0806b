import { runAction } from '../../_shared/src/edge.js';

// The umbrella action: `with: step: <name>` picks the step.
await runAction();
