import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';

/** apps/web/dist, where `npm run build:web` (and so `npm ci`) writes the console. */
export const defaultWebDist = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

// Paths the API answers itself: never the console, even when nothing matched (a 404 stays a problem).
const apiPaths = /^\/(api|health|ready|metrics)(\/|$)/;

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

// Vite names what it emits under assets/ after the content's hash: a new build is a new URL, so a
// year (the longest RFC 9111 allows in practice) is safe; everything else is revalidated.
const immutable = 'public, max-age=31536000, immutable';
const revalidate = 'no-cache';

const notBuilt = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>devart — console not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}</style></head>
<body>
<h1>devart is running, but its web console is not built</h1>
<p>Build it with <code>npm run build:web</code> (<code>npm ci</code> does it too), then reload this page.</p>
<p>The API is served meanwhile: browse it at <a href="/api/docs">/api/docs</a>.</p>
</body>
</html>`;

export interface WebAppOptions {
  /** The built console (index.html and assets/); default apps/web/dist. */
  distDir?: string;
}

/**
 * Serves the built web console at `/`: its files, and index.html for every other GET outside the
 * API so client-side routes (`/tasks/…`) survive a reload. `/api/*`, `/health`, `/ready` and
 * `/metrics` are left to the API, so an unknown API path is still a problem+json 404. Mount it
 * last. Without a build, `/` (and every client route) says how to build it.
 * @example app.route('/', webAppRoutes({ distDir: '/tmp/dist' }));
 */
export function webAppRoutes({ distDir = defaultWebDist }: WebAppOptions = {}) {
  const root = normalize(distDir.endsWith(sep) ? distDir : distDir + sep);
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  const read = (file: string) => {
    let body = cache.get(file);
    if (!body) {
      body = new Uint8Array(readFileSync(file));
      // Only hashed assets can be kept: index.html changes with every build, which may run while the API serves.
      if (file.startsWith(join(root, 'assets'))) cache.set(file, body);
    }
    return body;
  };
  const isFile = (file: string) => {
    try {
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };

  const router = new Hono();
  router.on(['GET', 'HEAD'], '*', (c) => {
    const path = c.req.path;
    if (apiPaths.test(path)) return c.notFound();
    const index = join(root, 'index.html');
    if (!existsSync(index)) return c.html(notBuilt, 200, { 'cache-control': revalidate });

    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return c.notFound();
    }
    const file = normalize(join(root, decoded));
    // `..` may not leave the build; a path that would is simply not one of its files.
    if (file.startsWith(root) && file !== root && isFile(file)) {
      const type = contentTypes[extname(file)] ?? 'application/octet-stream';
      const hashed = file.startsWith(join(root, 'assets') + sep);
      return c.body(read(file), 200, {
        'content-type': type,
        'cache-control': hashed ? immutable : revalidate,
        'x-content-type-options': 'nosniff',
      });
    }
    // A missing asset is a 404 (a stale page asking for an old hash must not get HTML as script).
    if (decoded.startsWith('/assets/') || extname(decoded) !== '') return c.notFound();
    return c.body(read(index), 200, {
      'content-type': contentTypes['.html']!,
      'cache-control': revalidate,
      'x-content-type-options': 'nosniff',
    });
  });
  return router;
}
