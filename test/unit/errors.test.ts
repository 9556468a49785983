import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  codes,
  listenError,
  protocolError,
  replyErrors,
  unknownRespCommand,
  wrongArity,
} from '../../src/errors.ts';
import { encodeLineReply } from '../../src/protocol/line.ts';
import { encodeResp } from '../../src/protocol/resp.ts';

const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code });

test('listen failures become one-line reasons', () => {
  assert.equal(
    listenError(errno('EADDRINUSE'), '0.0.0.0', 8080).message,
    'Port 8080 is already in use (0.0.0.0:8080)',
  );
  assert.equal(
    listenError(errno('EACCES'), '0.0.0.0', 80).message,
    'Permission denied binding 0.0.0.0:80',
  );
  assert.equal(
    listenError(errno('EADDRNOTAVAIL'), '10.1.2.3', 80).message,
    'Address 10.1.2.3 is not available on this machine (binding 10.1.2.3:80)',
  );
  assert.equal(
    listenError(errno('ENOTFOUND'), 'nohost.invalid', 80).message,
    'Cannot resolve host nohost.invalid',
  );
  assert.equal(listenError(errno('EACCES'), '::', 80).message, 'Permission denied binding [::]:80');
  const other = listenError(errno('EMFILE'), '::1', 9);
  assert.equal(other.message, 'Cannot listen on [::1]:9: EMFILE listen EMFILE');
  assert.equal(other.code, codes.ERR_LISTEN);
  assert.ok(!other.message.includes('\n'));
});

test('every shared reply error is one line on each protocol: "ERROR: " text, Redis error word over RESP', () => {
  for (const [name, e] of Object.entries(replyErrors)) {
    assert.ok(Object.values(codes).includes(e.code), `${name}: ${e.code} is in the catalogue`);
    assert.equal(encodeLineReply(e), `ERROR: ${e.message}\n`, name);
    const wire = encodeResp(e, 3).toString();
    assert.match(wire, /^-(ERR|NOAUTH|WRONGPASS|DENIED) [^\r\n]+\r\n$/, name);
    assert.equal(encodeResp(e, 2).toString(), wire, `${name}: the same in RESP2`);
  }
  assert.equal(encodeResp(replyErrors.authRequired, 2), '-NOAUTH Authentication required.\r\n');
  assert.equal(encodeLineReply(replyErrors.rateLimited), 'ERROR: Rate limit exceeded\n');
});

test("errors built from a client's input stay one line and keep Redis's texts", () => {
  const unknown = unknownRespCommand(Buffer.from('FO\r\nO'), [
    Buffer.from('a\nb'),
    Buffer.alloc(300, 'x'),
  ]);
  assert.equal(unknown.code, codes.ERR_UNKNOWN_COMMAND);
  const wire = encodeResp(unknown, 2).toString();
  assert.equal(wire.indexOf('\n'), wire.length - 1, 'a single line');
  assert.ok(wire.startsWith("-ERR unknown command 'FO  O', with args beginning with: 'a b' 'xxx"));
  assert.ok(wire.length < 300, 'arguments are cut short');
  assert.equal(
    encodeResp(wrongArity('ECHO', 'ECHO <message>'), 2),
    "-ERR wrong number of arguments for 'echo' command\r\n",
  );
  assert.equal(
    encodeLineReply(wrongArity('ECHO', 'ECHO <message>')),
    "ERROR: Wrong number of arguments for 'ECHO' (usage: ECHO <message>)\n",
  );
  assert.equal(
    encodeResp(protocolError('invalid bulk length'), 2),
    '-ERR Protocol error: invalid bulk length\r\n',
  );
  assert.equal(protocolError('x').code, codes.ERR_PROTOCOL);
});
