-- The marketplace: users' time zones (availability is wall-clock time in them) and the
-- full-text document behind expert search.
-- Applied in one transaction by the migration runner (no BEGIN/COMMIT here).

-- user_display_name(users) has a SQL-standard body, which pins the users row type: PostgreSQL
-- refuses ADD COLUMN while it exists. Dropped here and recreated, unchanged, at the end.
DROP FUNCTION user_display_name(users);

-- ---------------------------------------------------------------- time zones
ALTER TABLE users ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
COMMENT ON COLUMN users.timezone IS
    'IANA time zone name (e.g. Europe/Berlin). The user''s weekly availability times are '
    'wall-clock times in this zone, so their UTC instants move with daylight-saving changes.';
-- The application validates the name with Python's zoneinfo; this makes PostgreSQL's own tz
-- database agree, because expert search converts instants with AT TIME ZONE users.timezone and
-- an unknown name there would fail every search. AT TIME ZONE on timestamptz is immutable; an
-- unknown zone raises invalid_parameter_value (22023) before the check can be false.
ALTER TABLE users ADD CONSTRAINT users_timezone_known_check
    CHECK (length(timezone) BETWEEN 1 AND 64
           AND (timestamptz '2000-01-01 00:00:00+00' AT TIME ZONE timezone) IS NOT NULL);

-- ---------------------------------------------------------------- expert search
-- One document per user, so that a query like "python berlin" matches an expert whose skill is
-- Python and whose bio mentions Berlin (an AND across two tables' vectors would miss it).
-- users.skill_names is a copy of the user's skill names, kept by the trigger below; never
-- written by the application.
ALTER TABLE users ADD COLUMN skill_names text NOT NULL DEFAULT '';
COMMENT ON COLUMN users.skill_names IS
    'Space-separated copy of the user''s user_skills.skill_name, maintained by the '
    'user_skills_sync_skill_names trigger; feeds users.search_document.';

-- Weights rank a match in a skill (A) above one in the name (B) above one in the bio (C).
-- The 'simple' configuration neither stems nor drops stop words: skill names such as "IT",
-- "Go" or "C" must stay searchable. Queries use websearch_to_tsquery('simple', ...).
ALTER TABLE users ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', skill_names), 'A')
    || setweight(to_tsvector('simple', first_name || ' ' || last_name), 'B')
    || setweight(to_tsvector('simple', bio), 'C')) STORED;
COMMENT ON COLUMN users.search_document IS
    'Full-text document for expert search: skills (weight A), names (B), bio (C).';
CREATE INDEX users_search_document_idx ON users USING gin (search_document);

CREATE FUNCTION user_skills_sync_skill_names() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- Recompute from the table rather than patching the string: correct under any mix of
    -- inserts, deletes and renames. A cascaded delete of the user updates no row.
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE users SET skill_names = (
            SELECT coalesce(string_agg(skill_name, ' ' ORDER BY id), '')
            FROM user_skills WHERE user_id = NEW.user_id)
        WHERE id = NEW.user_id;
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.user_id <> NEW.user_id) THEN
        UPDATE users SET skill_names = (
            SELECT coalesce(string_agg(skill_name, ' ' ORDER BY id), '')
            FROM user_skills WHERE user_id = OLD.user_id)
        WHERE id = OLD.user_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION user_skills_sync_skill_names() IS
    'Keeps users.skill_names equal to the user''s skill names (the rule behind expert search).';
CREATE TRIGGER user_skills_sync_skill_names
    AFTER INSERT OR DELETE OR UPDATE OF user_id, skill_name ON user_skills
    FOR EACH ROW EXECUTE FUNCTION user_skills_sync_skill_names();

-- Users who listed skills before this migration.
UPDATE users u SET skill_names = s.names
FROM (SELECT user_id, string_agg(skill_name, ' ' ORDER BY id) AS names
      FROM user_skills GROUP BY user_id) s
WHERE s.user_id = u.id;

-- As in 0001: how a person is named in meetings, messages and reviews.
CREATE FUNCTION user_display_name(u users) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN COALESCE(NULLIF(btrim(u.first_name || ' ' || u.last_name), ''), u.username);
