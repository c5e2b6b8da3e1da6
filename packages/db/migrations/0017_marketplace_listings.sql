-- A marketplace item may be a listing only: no manifest (NULL), just its repository_url to look at.
-- Such an item is listed and searchable; installing it is refused (the API answers 409 saying why).
-- The '{}' that 0010's default gave rows published before it meant the same; it becomes NULL too.
ALTER TABLE marketplace_items
  ALTER COLUMN manifest DROP NOT NULL,
  ALTER COLUMN manifest DROP DEFAULT;

UPDATE marketplace_items SET manifest = NULL WHERE manifest = '{}'::jsonb;

COMMENT ON COLUMN marketplace_items.manifest IS
  'A workflow definition, or an agent spec (capabilities, image, resources); NULL for a listing that only points to its repository.';
