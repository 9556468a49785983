// MULTI, EXEC, DISCARD and the WATCH pair; the queue itself lives in ../transaction.ts.
import { notSupported, transactionErrors } from '../../errors.ts';
import { Preencoded } from '../../protocol/reply.ts';
import { defineCommand } from '../registry.ts';
import { Transaction } from '../transaction.ts';

const OK = new Preencoded('OK');
const flags = ['noscript', 'loading', 'stale', 'fast', 'allow_busy'];
const watchUnsupported = notSupported('WATCH', 'tcpool keeps no keys to watch');

export const transactionCommands = [
  defineCommand({
    name: 'MULTI',
    usage: 'MULTI',
    summary: 'Starts a transaction: later commands are queued until EXEC.',
    group: 'transactions',
    flags,
    family: 'redis',
    run: (ctx) => {
      if (ctx.transaction !== null) return transactionErrors.nested;
      const { MAX_ARGS, MAX_REQUEST_BYTES } = ctx.server.config;
      ctx.transaction = new Transaction(MAX_ARGS, MAX_REQUEST_BYTES);
      return OK;
    },
  }),
  defineCommand({
    name: 'EXEC',
    usage: 'EXEC',
    summary: 'Runs the queued commands in order and replies with their replies.',
    group: 'transactions',
    flags: ['noscript', 'loading', 'stale', 'skip_slowlog'],
    family: 'redis',
    run: (ctx) => {
      const transaction = ctx.transaction;
      if (transaction === null) return transactionErrors.execWithoutMulti;
      ctx.transaction = null;
      return transaction.run(ctx);
    },
  }),
  defineCommand({
    name: 'DISCARD',
    usage: 'DISCARD',
    summary: 'Drops the queued commands and ends the transaction.',
    group: 'transactions',
    flags,
    family: 'redis',
    run: (ctx) => {
      if (ctx.transaction === null) return transactionErrors.discardWithoutMulti;
      ctx.transaction = null;
      return OK;
    },
  }),
  defineCommand({
    name: 'WATCH',
    usage: 'WATCH key ...',
    summary: 'Not supported: tcpool keeps no keys to watch.',
    group: 'transactions',
    flags,
    family: 'redis',
    minArgs: 1,
    maxArgs: Infinity,
    run: (ctx) => (ctx.transaction !== null ? transactionErrors.watchInMulti : watchUnsupported),
  }),
  defineCommand({
    name: 'UNWATCH',
    usage: 'UNWATCH',
    summary: 'OK: nothing is ever watched.',
    group: 'transactions',
    flags,
    family: 'redis',
    run: () => OK,
  }),
];
