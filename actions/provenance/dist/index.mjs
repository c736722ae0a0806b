import { createRequire as __mcpReleaseRequire } from 'node:module'; const require = __mcpReleaseRequire(import.meta.url);
import {
  runAction
} from "../../_chunks/chunk-ZPPQ7AXE.mjs";
import "../../_chunks/chunk-WZFXOLV6.mjs";

// actions/provenance/src/index.ts
await runAction("provenance");
