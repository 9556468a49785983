// What tcpool/testing runs in its child process: `tcpool serve` from this same copy of tcpool
// (src/ in a checkout, dist/ when installed), so the module under test and the server share one
// tcpool (its reply classes and errors).
import { serve } from '../cli/serve.ts';

const code = await serve(process.argv.slice(2));
await new Promise((resolve) => process.stdout.write('', resolve));
process.exit(code);
