// npm run bench:http -- requests/s of POST /v1/commands/PING over h2c against a plain node:http2
// hello-world server, in the same run with the same client: the difference is what tcpool adds
// (routing, the executor, JSON). Each server is its own process with one serving thread
// (tcpool: THREAD_POOL_SIZE=1); the client
// keeps STREAMS requests in flight on each of SESSIONS connections for SECONDS.
//   node benchmarks/http.bench.ts [seconds=5] [sessions=4] [streams=64]
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:http2';
import { fileURLToPath } from 'node:url';

const [seconds, sessions, streams] = [5, 4, 64].map((d, i) => Number(process.argv[2 + i] ?? d));

/**
 * The hello-world server: a process of its own, like tcpool, so neither shares the client's CPU.
 */
async function helloWorld(): Promise<{ port: number; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:http2').createServer((req, res) => {
         req.resume();
         req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"result":"PONG"}'); });
       });
       s.listen(0, '127.0.0.1', () => console.log(s.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) =>
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
  );
  return { port, stop: () => child.kill('SIGTERM') };
}

async function tcpool(): Promise<{ port: number; stop: () => void }> {
  const bin = fileURLToPath(new URL('../bin/tcpool.js', import.meta.url));
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const child = spawn(process.execPath, [bin, 'serve'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      HTTP_PORT: String(port),
      THREAD_POOL_SIZE: '1',
      LOG_LEVEL: 'WARN',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('Server listening')) resolve();
    });
    // LOG_LEVEL=WARN prints no "listening" line: give it a moment instead.
    setTimeout(resolve, 1500);
  });
  return { port, stop: () => child.kill('SIGTERM') };
}

/** Closed loop: each stream slot sends the next request as soon as its reply is in. */
async function load(port: number): Promise<number> {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  const body = Buffer.from('{"args":[]}');
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      const session = connect(`http://127.0.0.1:${port}`);
      await Promise.all(
        Array.from({ length: streams }, async () => {
          while (Date.now() < until) {
            await new Promise<void>((resolve, reject) => {
              const s = session.request({
                ':method': 'POST',
                ':path': '/v1/commands/PING',
                'content-type': 'application/json',
              });
              s.on('data', () => {});
              s.on('end', () => resolve());
              s.on('error', reject);
              s.end(body);
            });
            done++;
          }
        }),
      );
      session.close();
    }),
  );
  return done / seconds;
}

const hello = await helloWorld();
const server = await tcpool();
try {
  const base = await load(hello.port);
  const ours = await load(server.port);
  console.log(`node:http2 hello world        ${Math.round(base).toString().padStart(8)} req/s`);
  console.log(`tcpool POST /v1/commands/PING ${Math.round(ours).toString().padStart(8)} req/s`);
  console.log(`tcpool / hello world          ${((ours / base) * 100).toFixed(1).padStart(7)} %`);
} finally {
  server.stop();
  hello.stop();
}
