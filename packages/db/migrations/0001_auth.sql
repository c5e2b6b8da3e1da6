-- Creates auth.users, auth.uid() and the API's roles where they do not exist yet (Supabase already has them).
CREATE SCHEMA IF NOT EXISTS auth;

DO $$
BEGIN
  IF to_regclass('auth.users') IS NULL THEN
    CREATE TABLE auth.users (
      id uuid PRIMARY KEY,
      email text,
      raw_app_meta_data jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    -- The marker tells the API that devart owns this table and may record first-seen users in it.
    COMMENT ON TABLE auth.users IS 'devart:owned — users seen in verified JWTs (Supabase provides its own auth.users).';
  END IF;

  IF to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS uuid
      LANGUAGE sql STABLE
      AS $fn$ SELECT nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')::uuid $fn$;
  END IF;
END
$$;

-- Roles are cluster-wide: another database on the same server may create them at the same moment.
DO $$
BEGIN
  CREATE ROLE authenticated NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
  CREATE ROLE anon NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The caller's platform role, from the verified claim app_metadata.role (as Supabase issues it).
CREATE OR REPLACE FUNCTION public.devart_role() RETURNS text
  LANGUAGE sql STABLE
  AS $fn$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb -> 'app_metadata' ->> 'role' $fn$;

GRANT USAGE ON SCHEMA auth TO authenticated, anon;
GRANT USAGE ON SCHEMA public TO authenticated, anon;
GRANT EXECUTE ON FUNCTION public.devart_role() TO authenticated, anon;
