import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, InvalidTokenError, signUserToken } from './jwt';

const sub = '0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10';

describe('tokens from an external issuer (JWKS, as Supabase and OIDC providers publish them)', () => {
  let server: Server;
  let jwksUrl: string;
  let issuerKey: CryptoKey;
  let strangerKey: CryptoKey;

  beforeAll(async () => {
    const issuer = await generateKeyPair('RS256');
    const stranger = await generateKeyPair('RS256');
    issuerKey = issuer.privateKey;
    strangerKey = stranger.privateKey;
    const jwk = { ...(await exportJWK(issuer.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const rs256 = (key: CryptoKey, { iss = 'https://issuer.example', aud = 'authenticated' } = {}) =>
    new SignJWT({ app_metadata: { role: 'supervisor' }, email: 'a@b.c' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(sub)
      .setIssuer(iss)
      .setAudience(aud)
      .setExpirationTime('5m')
      .sign(key);

  it('accepts a token signed by a key of the JWKS, with its role from app_metadata', async () => {
    const verify = createTokenVerifier({
      jwksUrl,
      issuer: 'https://issuer.example',
      audience: 'authenticated',
    });
    await expect(verify(await rs256(issuerKey))).resolves.toMatchObject({
      sub,
      role: 'supervisor',
      email: 'a@b.c',
    });
  });

  it('refuses a token signed by another key, from another issuer or for another audience', async () => {
    const verify = createTokenVerifier({
      jwksUrl,
      issuer: 'https://issuer.example',
      audience: 'authenticated',
    });
    await expect(verify(await rs256(strangerKey))).rejects.toThrow(InvalidTokenError);
    await expect(verify(await rs256(issuerKey, { iss: 'https://evil.example' }))).rejects.toThrow(
      InvalidTokenError,
    );
    await expect(verify(await rs256(issuerKey, { aud: 'other' }))).rejects.toThrow(InvalidTokenError);
  });

  it('takes HS256 tokens from the shared secret alongside, and refuses HS256 when only a JWKS is configured', async () => {
    const secret = 'jwks-test-secret-jwks-test-secret-0123456789';
    const hs = await signUserToken(secret, { role: 'viewer', ttlSeconds: 60 });
    await expect(createTokenVerifier({ jwksUrl, secret })(hs)).resolves.toMatchObject({ role: 'viewer' });
    await expect(createTokenVerifier({ jwksUrl, secret })(await rs256(issuerKey))).resolves.toMatchObject({
      role: 'supervisor',
    });
    await expect(createTokenVerifier({ jwksUrl })(hs)).rejects.toThrow(/HS256 are not accepted/);
  });

  it('refuses a JWKS over plain http unless it is on loopback, where nobody can step in between', () => {
    for (const url of ['http://issuer.example/jwks', 'http://10.0.0.5/jwks', 'http://127.0.0.1.nip.io/jwks'])
      expect(() => createTokenVerifier({ jwksUrl: url }), url).toThrow(/must be https:\/\//);
    for (const url of [
      jwksUrl,
      'http://localhost:1/jwks',
      'http://[::1]:1/jwks',
      'https://issuer.example/jwks',
    ])
      expect(() => createTokenVerifier({ jwksUrl: url }), url).not.toThrow();
  });
});
