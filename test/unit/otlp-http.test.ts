// The OTLP exporter's own HTTP/1.1: the response parser byte by byte (every split offset of every
// framing), and the transport against loopback servers that answer as collectors do, and as
// broken ones do: kept-alive connections, a connection closed while idle, retryable statuses with
// Retry-After, failures, silence, garbage.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import fc from 'fast-check';
import {
  type HttpResponse,
  HttpResponseError,
  ResponseParser,
} from '../../src/tracing/http-response.ts';
import { otlpHttpExporter, partialSuccess } from '../../src/tracing/exporter.ts';
import {
  type ExporterTransport,
  HttpTransport,
  requestHead,
  OtlpHttpError,
  retryAfterMillis,
  retrying,
} from '../../src/tracing/otlp-http.ts';

/** Feeds `wire` split at `cuts`; the response, or what end() gives at the close. */
function parse(wire: Buffer, cuts: number[], close = false): HttpResponse | null {
  const parser = new ResponseParser();
  let response: HttpResponse | null = null;
  let at = 0;
  for (const cut of [...cuts, wire.length]) {
    response ??= parser.push(wire.subarray(at, cut));
    at = cut;
  }
  if (response === null && close) response = parser.end();
  return response;
}

const framings: {
  name: string;
  wire: string;
  body: string;
  keepAlive: boolean;
  close?: boolean;
}[] = [
  {
    name: 'content-length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 5\r\n\r\nhello',
    body: 'hello',
    keepAlive: true,
  },
  {
    name: 'chunked with extensions and trailers',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n',
    body: 'hello',
    keepAlive: true,
  },
  {
    name: 'an interim 100 first, an empty body',
    wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    body: '',
    keepAlive: true,
  },
  {
    name: 'until the close (HTTP/1.0)',
    wire: 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello',
    body: 'hello',
    keepAlive: false,
    close: true,
  },
  {
    name: 'Connection: close',
    wire: 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy',
    body: 'busy',
    keepAlive: false,
  },
];

for (const f of framings)
  test(`response parser, ${f.name}: the same response at every split offset`, () => {
    const wire = Buffer.from(f.wire, 'latin1');
    for (let cut = 0; cut <= wire.length; cut++) {
      const response = parse(wire, [cut], f.close);
      assert.ok(response, `split at ${cut}`);
      assert.equal(response.body.toString(), f.body, `split at ${cut}`);
      assert.equal(response.keepAlive, f.keepAlive);
    }
    // And byte by byte.
    const bytes = [...Array(wire.length).keys()];
    assert.equal(parse(wire, bytes, f.close)?.body.toString(), f.body);
  });

test('response parser: any chunking of a chunked body, split anywhere (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (chunks, rawCuts) => {
        const wire = Buffer.concat([
          Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'),
          ...chunks.map((c) =>
            Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]),
          ),
          Buffer.from('0\r\n\r\n'),
        ]);
        const cuts = rawCuts.map((c) => c % (wire.length + 1)).sort((a, b) => a - b);
        const response = parse(wire, cuts);
        assert.ok(response);
        assert.deepEqual(response.body, Buffer.concat(chunks));
      },
    ),
    { numRuns: 300 },
  );
});

test('response parser: status, reason and fields (lower-case, repeated ones joined)', () => {
  const response = parse(
    Buffer.from(
      'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n',
    ),
    [],
  )!;
  assert.equal(response.status, 429);
  assert.equal(response.statusText, 'Too Many Requests');
  assert.equal(response.headers.get('retry-after'), '3');
  assert.equal(response.headers.get('x-a'), '1, 2');
});

test('response parser: bytes after the response make the connection not reusable', () => {
  const response = parse(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1'), [])!;
  assert.equal(response.body.toString(), 'x');
  assert.equal(response.keepAlive, false);
});

test('response parser: bad input is an error, never a hang or a huge buffer', () => {
  const bad = [
    'HTTP/2 200\r\n\r\n',
    'SMTP ready\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxyz',
    `HTTP/1.1 200 OK\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${(5 * 1024 * 1024).toString(16)}\r\n`,
  ];
  for (const wire of bad)
    assert.throws(() => parse(Buffer.from(wire), []), HttpResponseError, JSON.stringify(wire));
  // A head that never ends is refused at its limit, not buffered without end.
  const parser = new ResponseParser(1024, 1024);
  assert.throws(() => {
    for (let i = 0; i < 100; i++) parser.push(Buffer.from('X-Filler: 0123456789abcdef\r\n'));
  }, /response head too long/);
  // A body that runs until the close is bounded too.
  const untilClose = new ResponseParser(10);
  untilClose.push(Buffer.from('HTTP/1.0 200 OK\r\n\r\n'));
  assert.throws(() => untilClose.push(Buffer.alloc(11)), /larger than 10 bytes/);
  // The connection ends early.
  const early = new ResponseParser();
  early.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
  assert.throws(() => early.end(), /in the middle of its answer/);
  assert.throws(() => new ResponseParser().end(), /without answering/);
});

test('Retry-After: seconds, an HTTP date, absent', () => {
  assert.equal(retryAfterMillis('3'), 3000);
  assert.equal(retryAfterMillis('0'), -1);
  assert.equal(retryAfterMillis(undefined), undefined);
  const date = new Date(Date.now() + 10_000).toUTCString();
  const ms = retryAfterMillis(date)!;
  assert.ok(ms > 8000 && ms <= 10_000, String(ms));
  assert.equal(retryAfterMillis('Thu, 01 Jan 1970 00:00:00 GMT'), 0);
});

// --- the transport against loopback servers ------------------------------------------------

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A raw server: `answer(request bytes, socket, nth request)` writes what it likes. */
async function rawServer(
  answer: (request: Buffer, socket: Socket, n: number) => void,
): Promise<{ url: URL; connections: () => number; requests: Buffer[] }> {
  let connections = 0;
  const requests: Buffer[] = [];
  const server = createServer((socket) => {
    connections++;
    let pending = Buffer.alloc(0);
    socket.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(
          /content-length: (\d+)/i.exec(pending.toString('latin1', 0, end))?.[1] ?? 0,
        );
        if (pending.length < end + 4 + length) return;
        const request = pending.subarray(0, end + 4 + length);
        pending = pending.subarray(end + 4 + length);
        requests.push(request);
        answer(request, socket, requests.length);
      }
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: new URL(`http://127.0.0.1:${port}/v1/traces`),
    connections: () => connections,
    requests,
  };
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n';

test('transport: one POST with its headers and body; the connection is kept for the next', async () => {
  const server = await rawServer((_r, socket) => socket.write(OK));
  const transport = new HttpTransport(server.url, {
    'Content-Type': 'application/x-protobuf',
    Authorization: 'Bearer t0ken',
    'Content-Length': '999', // its own is written instead
  });
  try {
    const body = Buffer.from('some spans');
    for (let i = 0; i < 3; i++)
      assert.deepEqual(await transport.send(body, 5000), {
        status: 'success',
        data: Buffer.alloc(0),
      });
    assert.equal(server.connections(), 1);
    const [first] = server.requests;
    const text = first.toString('latin1');
    assert.match(text, /^POST \/v1\/traces HTTP\/1\.1\r\n/);
    assert.match(text, new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${server.url.port}\r\n`));
    assert.match(text, /\r\nContent-Type: application\/x-protobuf\r\n/);
    assert.match(text, /\r\nAuthorization: Bearer t0ken\r\n/);
    assert.match(text, /\r\nContent-Length: 10\r\n\r\nsome spans$/);
    assert.doesNotMatch(text, /999/);
  } finally {
    transport.shutdown();
  }
});

test('transport: a connection the collector closed while idle is replaced at once', async () => {
  const server = await rawServer((_r, socket) => {
    socket.write(OK);
    setTimeout(() => socket.destroy(), 20); // as a collector's idle timeout does
  });
  const transport = new HttpTransport(server.url, {});
  try {
    assert.equal((await transport.send(Buffer.from('a'), 5000)).status, 'success');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    assert.equal((await transport.send(Buffer.from('b'), 5000)).status, 'success');
    assert.ok(Date.now() - started < 500, 'no backoff');
    assert.equal(server.connections(), 2);
  } finally {
    transport.shutdown();
  }
});

test('transport: statuses as OpenTelemetry reads them; 503 then 200 is retried after Retry-After', async () => {
  const answers = [
    'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n',
    OK,
    'HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad payload',
  ];
  const server = await rawServer((_r, socket, n) => socket.write(answers[n - 1]));
  const transport = new HttpTransport(server.url, {});
  try {
    const first = await transport.send(Buffer.from('x'), 5000);
    assert.deepEqual(first, { status: 'retryable', retryInMillis: 1000 });
    assert.equal((await transport.send(Buffer.from('x'), 5000)).status, 'success');
    const failed = await transport.send(Buffer.from('x'), 5000);
    assert.equal(failed.status, 'failure');
    assert.ok(failed.status === 'failure' && failed.error instanceof OtlpHttpError);
    assert.equal((failed.error as OtlpHttpError).code, 400);
    assert.equal((failed.error as OtlpHttpError).data, 'bad payload');
  } finally {
    transport.shutdown();
  }
  // With retries: the 503 waits its Retry-After (1 s), then the 200.
  const again = await rawServer((_r, socket, n) => socket.write(n === 1 ? answers[0] : OK));
  const retried = retrying(new HttpTransport(again.url, {}));
  try {
    const started = Date.now();
    assert.equal((await retried.send(Buffer.from('x'), 10_000)).status, 'success');
    assert.ok(Date.now() - started >= 950, `${Date.now() - started} ms`);
    assert.equal(again.requests.length, 2);
  } finally {
    retried.shutdown();
  }
});

test('transport: silence times out, a refused connection and garbage fail, each without a throw', async () => {
  const silent = await rawServer(() => {});
  const garbage = await rawServer((_r, socket) => socket.end('SSH-2.0-OpenSSH\r\n\r\n'));
  const closed = await rawServer((_r, socket) => socket.destroy());
  const t1 = new HttpTransport(silent.url, {});
  const t2 = new HttpTransport(garbage.url, {});
  const t3 = new HttpTransport(closed.url, {});
  // A port nothing listens on: one that was just released.
  const free = createServer();
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
  const { port } = free.address() as { port: number };
  await new Promise((resolve) => free.close(resolve));
  const t4 = new HttpTransport(new URL(`http://127.0.0.1:${port}/v1/traces`), {});
  try {
    const timedOut = await t1.send(Buffer.from('x'), 200);
    assert.equal(timedOut.status, 'retryable');
    assert.match(String((timedOut as { error: Error }).error), /timed out/);
    const bad = await t2.send(Buffer.from('x'), 2000);
    assert.equal(bad.status, 'failure');
    assert.match(String((bad as { error: Error }).error), /bad status line/);
    const hungUp = await t3.send(Buffer.from('x'), 2000);
    assert.equal(hungUp.status, 'retryable');
    const refused = await t4.send(Buffer.from('x'), 2000);
    assert.equal(refused.status, 'retryable');
    assert.equal((refused as { error: NodeJS.ErrnoException }).error.code, 'ECONNREFUSED');
  } finally {
    for (const t of [t1, t2, t3, t4]) t.shutdown();
  }
  const down = retrying(new HttpTransport(new URL(`http://127.0.0.1:${port}/`), {}));
  const started = Date.now();
  // Retries stop at the export's timeout: the next backoff (~1 s) would pass it.
  assert.equal((await down.send(Buffer.from('x'), 500)).status, 'retryable');
  assert.ok(Date.now() - started < 1000);
});

test('transport: a real node:http server, chunked answers, many exports on few connections', async () => {
  let connections = 0;
  const server = createHttpServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.write(Buffer.alloc(3));
      res.end(Buffer.from(String(n)));
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const transport: ExporterTransport = new HttpTransport(
    new URL(`http://127.0.0.1:${port}/v1/traces`),
    {},
  );
  try {
    const body = Buffer.alloc(300_000, 1);
    const results = await Promise.all([...Array(20).keys()].map(() => transport.send(body, 5000)));
    for (const r of results) {
      assert.equal(r.status, 'success');
      assert.equal(
        Buffer.from((r as { data: Uint8Array }).data)
          .subarray(3)
          .toString(),
        '300000',
      );
    }
    for (let i = 0; i < 10; i++) assert.equal((await transport.send(body, 5000)).status, 'success');
    assert.ok(connections <= 20, `${connections} connections`);
  } finally {
    transport.shutdown();
    server.close();
  }
});

// --- what a review found (each of these failed before its fix) ------------------------------

test('response parser: an interim answer counts as started; heads and trailers are bounded in all; both framings are not reused', () => {
  const parser = new ResponseParser();
  parser.push(Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'));
  assert.equal(parser.started, true);
  assert.throws(() => parser.end(), /before its answer was complete/);
  const interim = new ResponseParser(1024, 1024);
  assert.throws(() => {
    for (let i = 0; i < 100; i++) interim.push(Buffer.from('HTTP/1.1 103 Early Hints\r\n\r\n'));
  }, /response head too long/);
  const trailers = new ResponseParser(1024, 1024);
  trailers.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n'));
  assert.throws(() => {
    for (let i = 0; i < 100; i++) trailers.push(Buffer.from('X-Trailer: 0123456789abcdef\r\n'));
  }, /trailers too long/);
  const both = parse(
    Buffer.from(
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n',
    ),
    [],
  )!;
  assert.equal(both.body.toString(), 'x');
  assert.equal(both.keepAlive, false);
});

for (const [status, reset] of [
  [413, false],
  [413, true],
  [200, true],
] as const)
  test(`transport: a ${status} answered before the body was read is final${reset ? ', even if the connection then resets' : ''}`, async () => {
    const held: Socket[] = [];
    const early = createServer((socket) => {
      held.push(socket);
      socket.once('data', () => {
        socket.pause(); // stops reading the body
        socket.write(
          `HTTP/1.1 ${status} Whatever\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!`,
        );
        if (reset) setTimeout(() => socket.destroy(), 50); // unread bytes: the kernel resets
      });
      socket.on('error', () => {});
    });
    servers.push(early);
    await new Promise<void>((resolve) => early.listen(0, '127.0.0.1', resolve));
    const { port } = early.address() as { port: number };
    const transport = retrying(
      new HttpTransport(new URL(`http://127.0.0.1:${port}/v1/traces`), {}),
    );
    try {
      const started = Date.now();
      const result = await transport.send(Buffer.alloc(32 * 1024 * 1024), 5000);
      // As OpenTelemetry's exporter: a success stands whatever the connection does next.
      assert.equal(result.status, status === 200 ? 'success' : 'failure');
      if (status === 413)
        assert.equal(((result as { error: Error }).error as OtlpHttpError).code, 413);
      assert.ok(Date.now() - started < 2000, `${Date.now() - started} ms`);
    } finally {
      transport.shutdown();
      for (const s of held) s.destroy();
    }
  });

test('transport: shutdown() ends the requests under way and the waits between retries', async () => {
  const silent = await rawServer(() => {});
  const transport = new HttpTransport(silent.url, {});
  const started = Date.now();
  const pending = transport.send(Buffer.from('x'), 5000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  transport.shutdown();
  const result = await pending;
  assert.equal(result.status, 'failure');
  assert.match(String((result as { error: Error }).error), /shut down/);
  assert.ok(Date.now() - started < 1000);
  assert.equal(silent.connections(), 1, 'no new connection after the shutdown');
  // Between retries.
  const busy = await rawServer((_r, socket) =>
    socket.write('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n'),
  );
  const retried = retrying(new HttpTransport(busy.url, {}));
  const waiting = retried.send(Buffer.from('x'), 10_000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const stoppedAt = Date.now();
  retried.shutdown();
  assert.equal((await waiting).status, 'failure');
  assert.ok(Date.now() - stoppedAt < 500);
  assert.equal(busy.requests.length, 1);
});

test('transport: the attempt after a stale connection gets only the time left', async () => {
  const server = await rawServer((_r, socket, n) => {
    if (n === 1) socket.write(OK);
    else if (n === 2) setTimeout(() => socket.destroy(), 900); // closes, unanswered
    // then silence
  });
  const transport = new HttpTransport(server.url, {});
  try {
    assert.equal((await transport.send(Buffer.from('a'), 5000)).status, 'success');
    const started = Date.now();
    const result = await transport.send(Buffer.from('b'), 1000);
    assert.equal(result.status, 'retryable');
    assert.ok(Date.now() - started < 1500, `${Date.now() - started} ms`);
  } finally {
    transport.shutdown();
  }
});

test('transport: bytes a collector sends while no request is out retire the connection', async () => {
  const server = await rawServer((_r, socket, n) => {
    socket.write(OK);
    if (n === 1)
      setTimeout(() => socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'), 30);
  });
  const transport = new HttpTransport(server.url, {});
  try {
    assert.equal((await transport.send(Buffer.from('a'), 5000)).status, 'success');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await transport.send(Buffer.from('b'), 5000)).status, 'success');
    assert.equal(server.connections(), 2);
  } finally {
    transport.shutdown();
  }
});

test('transport: Retry-After: 0 retries at once, without a negative timer', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  const server = await rawServer((_r, socket, n) =>
    socket.write(
      n === 1
        ? 'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n'
        : OK,
    ),
  );
  const transport = retrying(new HttpTransport(server.url, {}));
  try {
    assert.equal((await transport.send(Buffer.from('x'), 3000)).status, 'success');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
    transport.shutdown();
  }
});

test('request head: bad header names and values refused by name; names dedupe in any case; Host and login details', () => {
  const url = new URL('http://127.0.0.1:4318/v1/traces?x=1');
  assert.throws(
    () => requestHead(url, { 'x-a': '1\r\nX-Injected: yes' }),
    /OTLP header x-a: .*line break/,
  );
  assert.throws(() => requestHead(url, { 'x-a': '€' }), /OTLP header x-a: .*cannot carry/);
  assert.throws(() => requestHead(url, { 'x a': '1' }), /not a valid header name/);
  assert.equal(
    requestHead(url, { 'user-agent': 'mine', 'User-Agent': 'tcpool', 'Content-Length': '9' }),
    'POST /v1/traces?x=1 HTTP/1.1\r\nHost: 127.0.0.1:4318\r\nUser-Agent: tcpool\r\nContent-Length: ',
  );
  // A Host the headers name is sent (virtual hosts), as Node's http client does.
  assert.match(requestHead(url, { Host: 'vhost.example' }), /\r\nHost: vhost\.example\r\n/);
  assert.doesNotMatch(requestHead(url, { Host: 'vhost.example' }), /127\.0\.0\.1/);
  // Login details in the URL: Basic authorisation, unless the headers name one.
  const login = new URL('http://us%20er:s%3Acret@127.0.0.1:4318/v1/traces');
  assert.match(
    requestHead(login, {}),
    new RegExp(`\r\nAuthorization: Basic ${Buffer.from('us er:s:cret').toString('base64')}\r\n`),
  );
  assert.match(
    requestHead(login, { authorization: 'Bearer t' }),
    /\r\nauthorization: Bearer t\r\n/,
  );
  assert.doesNotMatch(requestHead(login, { authorization: 'Bearer t' }), /Basic/);
  assert.doesNotMatch(requestHead(login, {}), /us er|cret/);
});

test('partial success: protobuf and JSON answers read; a full success is null', () => {
  // ExportTraceServiceResponse { partial_success = 1 { rejected_spans = 1: 3, error_message = 2 } }
  const message = Buffer.from('too old');
  const inner = Buffer.concat([Buffer.from([0x08, 3, 0x12, message.length]), message]);
  const proto = Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
  assert.deepEqual(partialSuccess(proto, 'http/protobuf'), { rejected: 3, message: 'too old' });
  assert.deepEqual(
    partialSuccess(
      Buffer.from('{"partialSuccess":{"rejectedSpans":"2","errorMessage":"x"}}'),
      'http/json',
    ),
    { rejected: 2, message: 'x' },
  );
  assert.equal(partialSuccess(Buffer.alloc(0), 'http/protobuf'), null);
  assert.equal(partialSuccess(Buffer.from('{}'), 'http/json'), null);
  assert.equal(partialSuccess(Buffer.from([0x0a, 0x00]), 'http/protobuf'), null);
  assert.equal(partialSuccess(Buffer.from([0x0a, 0x09, 0x08]), 'http/protobuf'), null); // truncated
});

test('exporter: the concurrency limit refuses at once; a partial success is reported', async () => {
  const silent = await rawServer(() => {});
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = silent.url.origin;
  const warnings: string[] = [];
  try {
    const exporter = await otlpHttpExporter(2, 'http/protobuf', (m) => warnings.push(m));
    const outcomes: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++)
      exporter.send(Buffer.from('x'), 1, (ok, error) => outcomes.push(ok ? 'ok' : error?.message));
    assert.deepEqual(outcomes, ['Concurrent export limit reached']);
    // Not waited for: the exports are out at a collector that never answers.
    void exporter.shutdown();
    const message = Buffer.from('too old');
    const inner = Buffer.concat([Buffer.from([0x08, 3, 0x12, message.length]), message]);
    const body = Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
    const partial = await rawServer((_r, socket) =>
      socket.write(
        Buffer.concat([
          Buffer.from(
            `HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`,
          ),
          body,
        ]),
      ),
    );
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = partial.url.origin;
    const second = await otlpHttpExporter(2, 'http/protobuf', (m) => warnings.push(m));
    const ok = await new Promise<boolean>((resolve) => second.send(Buffer.from('x'), 5, resolve));
    assert.equal(ok, true);
    assert.deepEqual(warnings, ['Tracing: the collector rejected 3 of 5 spans: too old']);
    await second.shutdown();
    // With gzip, OpenTelemetry's exporter sends; its report of the partial success (through its
    // diag) reaches `warn` too.
    const gzipped = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () =>
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(body),
      );
    });
    await new Promise<void>((resolve) => gzipped.listen(0, '127.0.0.1', resolve));
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(gzipped.address() as { port: number }).port}`;
    process.env.OTEL_EXPORTER_OTLP_COMPRESSION = 'gzip';
    try {
      warnings.length = 0;
      const third = await otlpHttpExporter(2, 'http/protobuf', (m) => warnings.push(m));
      assert.equal(
        await new Promise<boolean>((resolve) => third.send(Buffer.from('x'), 5, resolve)),
        true,
      );
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0],
        /^Tracing: Received Partial Success response: .*"rejectedSpans":3.*too old/,
      );
      await third.shutdown();
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_COMPRESSION;
      gzipped.close();
    }
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  }
});
