// The dashboard in a real browser (Debian's chromium driven by playwright-core) while tcpool bench
// loads the server: no console error, no request to anything but the admin port, the figures
// move, and the page's pool control changes STATS FULL's workers=. A screenshot is saved
// (DASHBOARD_SCREENSHOT=docs/img/dashboard.png to refresh the one in the docs).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type AdminServer, startAdminServer } from '../helpers/admin.ts';
import { hasChromium, launchChromium } from '../helpers/browser.ts';
import { TestClient } from '../helpers/client.ts';
import { BIN, cleanEnv } from '../helpers/server.ts';

const found = hasChromium;
if (!found && process.env.CI)
  throw new Error('chromium is not installed (apt-get install chromium)');

const cleanup: (() => Promise<unknown>)[] = [];

/** Polls `ok` every 100 ms for up to 10 s. */
async function until(ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${ok}`);
}
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test('the dashboard shows live figures and resizes the pool, in chromium under load', {
  skip: found ? false : 'chromium not installed (apt-get install chromium)',
}, async () => {
  const server: AdminServer = await startAdminServer({ env: { THREAD_POOL_SIZE: '2' } });
  cleanup.push(() => server.kill());
  // Long enough to outlast a slow browser start on a loaded machine; stopped by cleanup.
  const bench = spawn(
    process.execPath,
    [BIN, 'bench', '--port', String(server.port), '-c', '8', '-d', '60', '--rate', '4000'],
    { env: cleanEnv(), stdio: 'ignore' },
  );
  cleanup.push(async () => {
    if (bench.exitCode === null) bench.kill('SIGTERM');
  });
  // A few idle clients, so the clients table has rows.
  for (let i = 0; i < 3; i++) {
    const c = await TestClient.connect(server.port);
    assert.equal(await c.request('PING'), 'PONG');
    cleanup.push(async () => c.close());
  }

  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
  const problems: string[] = [];
  const origin = `http://127.0.0.1:${server.adminPort}`;
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(`${origin}/`)) problems.push(`request elsewhere: ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    // The event stream is cut when the page closes; anything else failing is a problem.
    if (!r.url().endsWith('/api/v1/events')) problems.push(`failed: ${r.url()}`);
  });
  await page.goto(`${origin}/`);
  // Polled from here: the page's CSP (no eval) also forbids Playwright's waitForFunction.
  const text = async (sel: string) => (await page.textContent(sel)) ?? '';
  await until(async () => (await text('#phase')) === 'serving');

  // The figures move: requests/s becomes non-zero and changes from second to second.
  const rps = async () => Number((await page.textContent('#c-rps'))!.replaceAll(',', ''));
  await until(async () => (await rps()) > 0);
  const seen = new Set<number>();
  for (let i = 0; i < 4; i++) {
    seen.add(await rps());
    await page.waitForTimeout(1100);
  }
  assert.ok(seen.size > 1, `requests/s moves: ${[...seen]}`);
  assert.ok(Number(await page.textContent('#c-active')) >= 11, 'bench and idle clients counted');
  assert.ok((await page.locator('#clients tbody tr').count()) >= 11, 'clients table filled');
  assert.ok((await page.locator('#workers tbody tr').count()) === 2);

  // The pool control: 2 -> 3 workers, as STATS FULL sees it.
  await page.fill('#pool-size', '3');
  await page.click('#pool-apply');
  await until(async () => (await text('#message')).startsWith('Pool size 3'));
  const c = await TestClient.connect(server.port);
  assert.match(await c.request('STATS FULL'), / workers=3 /);
  c.close();
  await until(async () => (await text('#c-pool')) === '3 / 64');
  await page.waitForTimeout(2500); // let the charts show the third worker

  const file =
    process.env.DASHBOARD_SCREENSHOT ??
    join(mkdtempSync(join(tmpdir(), 'tcpool-dashboard-')), 'dashboard.png');
  await page.screenshot({ path: file, fullPage: true });
  assert.deepEqual(problems, []);
});
