import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createVmafServer, packageInfo } from './server.js';

const USAGE = `Usage: vmaf-mcp [--models DIR]... [FOLDER]...

An MCP server over stdio that scores video quality with the vmaf CLI (VMAF_BIN or PATH)
or ffmpeg's libvmaf filter (FFMPEG_BIN or PATH).

  FOLDER          a folder the server may read YUV and model files from (repeatable)
  --models DIR    a model folder listed by list_models (repeatable; readable too)

Environment: VMAF_BIN, FFMPEG_BIN, VMAF_MCP_ALLOW (more readable folders, separated by ":"),
VMAF_MCP_TIMEOUT_MS (per scoring run, default 600000).
`;

async function main(): Promise<void> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      options: { models: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
      allowPositionals: true,
    }));
  } catch (err) {
    process.stderr.write(`vmaf-mcp: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.version) {
    process.stdout.write(`${(await packageInfo()).version}\n`);
    return;
  }
  const server = await createVmafServer({ roots: positionals, modelFolders: values.models ?? [], env: process.env });
  await server.connect(new StdioServerTransport());
}

main().catch((err: unknown) => {
  process.stderr.write(`vmaf-mcp: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
