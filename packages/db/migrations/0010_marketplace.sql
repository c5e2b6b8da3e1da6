-- Marketplace: manifests, yanking, download counts, semver ordering, tag and full-text search.

-- A sortable key with semver precedence (semver.org §11) under the "C" collation, or NULL when
-- `version` is not semver: fixed-width major.minor.patch, then '~' for a release (sorts above)
-- or '!' and the pre-release identifiers, each after a ' ' so a shorter list sorts first;
-- numeric identifiers are '0' + width + digits (below alphanumeric ones, '1' + text).
CREATE FUNCTION public.devart_semver_key(version text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
  AS $fn$
DECLARE
  parts text[];
  ident text;
  key text;
BEGIN
  parts := regexp_match(version,
    '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)'
    '(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?'
    '(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$');
  IF parts IS NULL OR length(parts[1]) > 16 OR length(parts[2]) > 16 OR length(parts[3]) > 16 THEN
    RETURN NULL;
  END IF;
  key := lpad(parts[1], 16, '0') || '.' || lpad(parts[2], 16, '0') || '.' || lpad(parts[3], 16, '0');
  IF parts[4] IS NULL THEN
    RETURN key || '~';
  END IF;
  key := key || '!';
  FOREACH ident IN ARRAY string_to_array(parts[4], '.') LOOP
    IF ident ~ '^[0-9]+$' THEN
      key := key || ' 0' || lpad(length(ident)::text, 3, '0') || ident;
    ELSE
      key := key || ' 1' || ident;
    END IF;
  END LOOP;
  RETURN key;
END
$fn$;

ALTER TABLE marketplace_items
  ADD COLUMN manifest jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN yanked_at timestamptz,
  ADD COLUMN downloads bigint NOT NULL DEFAULT 0,
  ADD COLUMN version_key text COLLATE "C" GENERATED ALWAYS AS (public.devart_semver_key(version)) STORED,
  ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', regexp_replace(name, '[@/._-]+', ' ', 'g')), 'A')
    || setweight(to_tsvector('english', coalesce(description, '')), 'B')
  ) STORED;

COMMENT ON COLUMN marketplace_items.manifest IS 'A workflow definition, or an agent spec (capabilities, image, resources).';
COMMENT ON COLUMN marketplace_items.yanked_at IS 'Hidden from search when set; still resolvable by exact version.';
COMMENT ON COLUMN marketplace_items.version_key IS 'devart_semver_key(version): ORDER BY it (COLLATE "C") for semver precedence.';

-- NOT VALID: rows written before this migration are left as they are; new ones must comply.
ALTER TABLE marketplace_items
  ADD CONSTRAINT marketplace_items_item_type_check CHECK (item_type IN ('agent', 'workflow')) NOT VALID,
  ADD CONSTRAINT marketplace_items_version_check CHECK (version_key IS NOT NULL) NOT VALID,
  ADD CONSTRAINT marketplace_items_tags_check CHECK (tags IS NULL OR jsonb_typeof(tags) = 'array') NOT VALID;

CREATE INDEX marketplace_items_tags_idx ON marketplace_items USING gin (tags jsonb_path_ops);
CREATE INDEX marketplace_items_search_idx ON marketplace_items USING gin (search);
CREATE INDEX marketplace_items_versions_idx ON marketplace_items (name, version_key DESC);
CREATE INDEX marketplace_items_newest_idx ON marketplace_items (created_at DESC, id DESC);

-- Provenance of installed workflows, for the quality signals of the item they came from.
ALTER TABLE workflows ADD COLUMN marketplace_item_id uuid REFERENCES marketplace_items (id);
CREATE INDEX workflows_marketplace_item_idx ON workflows (marketplace_item_id)
  WHERE marketplace_item_id IS NOT NULL;

-- Direct clients (Supabase, PostgREST) publish only the seed's fields and the manifest, and may
-- only yank: download counts and generated columns stay the platform's.
REVOKE INSERT, UPDATE ON marketplace_items FROM authenticated;
GRANT INSERT (item_type, name, description, version, publisher_id, tags, repository_url, manifest)
  ON marketplace_items TO authenticated;
GRANT UPDATE (yanked_at) ON marketplace_items TO authenticated;
CREATE POLICY marketplace_items_yank ON marketplace_items FOR UPDATE TO authenticated
  USING (public.devart_role() = 'admin' OR (public.devart_role() = 'supervisor' AND publisher_id = auth.uid()))
  WITH CHECK (public.devart_role() = 'admin' OR (public.devart_role() = 'supervisor' AND publisher_id = auth.uid()));
