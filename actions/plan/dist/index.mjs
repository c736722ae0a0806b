import { createRequire as __mcpReleaseRequire } from 'node:module'; const require = __mcpReleaseRequire(import.meta.url);
import {
  runAction
} from "../../_chunks/chunk-IGVGXXB4.mjs";

// actions/plan/src/index.ts
await runAction("plan");
