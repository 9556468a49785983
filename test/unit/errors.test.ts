import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codes, listenError, replyErrors } from '../../src/errors.ts';

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

test('reply errors have stable codes, Redis texts over RESP, and say whether the connection closes', () => {
  assert.deepEqual(
    Object.values(replyErrors).map((e) => [
      e.code,
      e.message.split(':')[0],
      e.resp.split(' ')[0],
      e.close,
    ]),
    [
      ['ERR_UNKNOWN_COMMAND', 'Unknown command', 'ERR', false],
      ['ERR_LINE_TOO_LONG', 'Line too long', 'ERR', true],
      ['ERR_TOO_MANY_CONNECTIONS', 'Too many connections', 'ERR', true],
      ['ERR_INTERNAL', 'Internal error', 'ERR', false],
      ['ERR_AUTH_REQUIRED', 'Authentication required', 'NOAUTH', false],
      ['ERR_AUTH_INVALID', 'Invalid token', 'WRONGPASS', false],
      [
        'ERR_AUTH_BLOCKED',
        'Too many failed authentication attempts from your address, try again later',
        'ERR',
        false,
      ],
      ['ERR_AUTH_NOT_CONFIGURED', 'AUTH is not configured on this server', 'ERR', false],
      ['ERR_RATE_LIMIT', 'Rate limit exceeded', 'ERR', false],
      ['ERR_LIMIT_CONNECTIONS_PER_IP', 'Too many connections from your address', 'ERR', true],
      ['ERR_PROTECTED_MODE', 'Protected mode', 'DENIED', true],
    ],
  );
});
