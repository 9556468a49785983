// AUTH tokens are configured as hashes, never in plain text, and checked in constant time.
//   sha256:<hex>                       for long random tokens (tcpool hash-token --generate)
//   scrypt:<N>:<r>:<p>:<salt>:<hash>   for tokens a person chose (slow on purpose; runs off the
//   event loop)
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (
  pw: Buffer,
  salt: Buffer,
  len: number,
  opts: object,
) => Promise<Buffer>;
const SCRYPT = { N: 16384, r: 8, p: 1 };

export function hashTokenSha256(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

export async function hashTokenScrypt(token: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(Buffer.from(token, 'utf8'), salt, 32, {
    ...SCRYPT,
    maxmem: 64 * 1024 * 1024,
  });
  return `scrypt:${SCRYPT.N}:${SCRYPT.r}:${SCRYPT.p}:${salt.toString('base64')}:${hash.toString('base64')}`;
}

/** A random token of 32 bytes, URL-safe: what `tcpool hash-token --generate` hands out. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

interface Sha256Entry {
  kind: 'sha256';
  digest: Buffer;
}
interface ScryptEntry {
  kind: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

export class TokenVerifier {
  private readonly entries: (Sha256Entry | ScryptEntry)[];

  constructor(hashes: readonly string[]) {
    this.entries = hashes.map((h) => {
      const parts = h.split(':');
      if (parts[0] === 'sha256') return { kind: 'sha256', digest: Buffer.from(parts[1], 'hex') };
      const [, N, r, p, salt, hash] = parts;
      return {
        kind: 'scrypt',
        N: Number(N),
        r: Number(r),
        p: Number(p),
        salt: Buffer.from(salt, 'base64'),
        hash: Buffer.from(hash, 'base64'),
      };
    });
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /**
   * True when `token` matches any configured hash. Every entry is checked, whatever matched
   * first, and each comparison is constant-time, so timing tells nothing about which or how much.
   */
  async verify(token: Buffer): Promise<boolean> {
    let ok = false;
    const sha = createHash('sha256').update(token).digest();
    for (const e of this.entries) {
      if (e.kind === 'sha256') {
        ok = timingSafeEqual(sha, e.digest) || ok;
      } else {
        const got = await scryptAsync(token, e.salt, e.hash.length, {
          N: e.N,
          r: e.r,
          p: e.p,
          maxmem: 256 * e.N * e.r + 1024 * 1024,
        });
        ok = timingSafeEqual(got, e.hash) || ok;
      }
    }
    return ok;
  }
}
