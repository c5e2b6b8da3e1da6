/** The same server as `url`, database `name`. */
export function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** A connection for CREATE/DROP DATABASE: the server's `postgres` database. */
export function adminUrl(url: string): string {
  return withDatabase(url, 'postgres');
}
