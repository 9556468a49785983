// TLS material is read and checked once, at start-up, so a bad certificate stops the server with
// a message naming the key and the file rather than failing in every worker.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError, codes } from '../errors.ts';
import { transports } from '../transport/index.ts';
import type { Config } from './schema.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** Set: clients must present a certificate signed by one of these. */
  ca: string | null;
  minVersion: Config['TLS_MIN_VERSION'];
}

function read(key: 'TLS_CERT' | 'TLS_KEY' | 'TLS_CA', path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(
      codes.ERR_CONFIG_FILE,
      `Cannot read ${key} ${path}: ${e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message)}`,
    );
  }
}

export function loadTls(config: Config): TlsMaterial | null {
  if (!transports.some((t) => t.tlsKeys(config).length > 0)) return null;
  const material: TlsMaterial = {
    cert: read('TLS_CERT', config.TLS_CERT),
    key: read('TLS_KEY', config.TLS_KEY),
    ca: config.TLS_CA === '' ? null : read('TLS_CA', config.TLS_CA),
    minVersion: config.TLS_MIN_VERSION,
  };
  try {
    createSecureContext({
      cert: material.cert,
      key: material.key,
      ca: material.ca ?? undefined,
      minVersion: material.minVersion,
    });
  } catch (err) {
    throw new ConfigError(
      codes.ERR_CONFIG_VALUE,
      `Invalid TLS_CERT/TLS_KEY (${config.TLS_CERT}, ${config.TLS_KEY}${material.ca ? `, TLS_CA ${config.TLS_CA}` : ''}): ${(err as Error).message}`,
    );
  }
  return material;
}
