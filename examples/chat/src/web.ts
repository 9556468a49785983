// Serves the chat page (public/index.html) over HTTP; the page itself talks to tcpool over a
// WebSocket. `npm run web` serves it on http://127.0.0.1:8000 (WEB_PORT), the origin `npm start`
// allows in WS_ALLOWED_ORIGINS.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';

const PAGE = readFileSync(new URL('../public/index.html', import.meta.url));

/** Listens on 127.0.0.1:`port` (0: a free one); resolves with the server and its origin. */
export async function servePage(port: number): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    if ((req.url ?? '/').split('?')[0] !== '/') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { server, origin };
}

if (import.meta.main) {
  const { origin } = await servePage(Number(process.env.WEB_PORT ?? 8000));
  console.log(`chat page on ${origin}`);
}
