import { runAction } from '../../_shared/src/edge.js';

await runAction('undraft');
