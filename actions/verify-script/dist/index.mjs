import { createRequire as __mcpReleaseRequire } from 'node:module'; const require = __mcpReleaseRequire(import.meta.url); import { fileURLToPath as __mcpReleaseFile } from 'node:url'; import { dirname as __mcpReleaseDir } from 'node:path'; const __filename = __mcpReleaseFile(import.meta.url); const __dirname = __mcpReleaseDir(__filename);
import {
  runAction
} from "../../_chunks/chunk-PGRCPGHS.mjs";
import "../../_chunks/chunk-ZXAZZH4T.mjs";

// actions/verify-script/src/index.ts
await runAction("verify-script");
