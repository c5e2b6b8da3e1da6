import { Hono } from 'hono';

const page = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>devart</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem}
code,pre{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}pre{padding:.8rem;overflow-x:auto}</style></head>
<body>
<h1>devart is running</h1>
<p>The API is served here. Browse it at <a href="/api/docs">/api/docs</a>
(OpenAPI document: <a href="/api/openapi.json">/api/openapi.json</a>).</p>
<p id="token-note">Pass a token as <code>Authorization: Bearer …</code>. Mint one with
<code>npx devart token --role admin</code>.</p>
<pre id="example" hidden></pre>
<script>
  // A login link carries the token in the fragment, which never reaches the server or its logs.
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token) {
    localStorage.setItem('devart.token', token);
    history.replaceState(null, '', location.pathname);
  }
  const saved = localStorage.getItem('devart.token');
  if (saved) {
    document.getElementById('token-note').textContent = 'Your token is saved in this browser. Try:';
    const pre = document.getElementById('example');
    pre.textContent = "curl -H 'Authorization: Bearer " + saved + "' " + location.origin + '/api/tasks';
    pre.hidden = false;
  }
</script>
</body>
</html>`;

/** A small landing page until the UI lands; it also keeps the token of a login link. */
export function landingRoutes() {
  const router = new Hono();
  router.get('/', (c) => c.html(page));
  return router;
}
