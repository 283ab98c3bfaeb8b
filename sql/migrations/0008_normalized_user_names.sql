-- Usernames and emails are unique, and usernames log in, by one normalized form: Unicode NFKC,
-- then case folding (expertconnect/names.py, lookup_key). Until now both went through
-- PostgreSQL's lower(), which folds characters Python does not the same way ("İ", U+0130,
-- became "i", so "İvan" logged in to the account "ivan" outside that account's login
-- lockout) and does not unify compatibility look-alikes ("ｊｏｈｎ@example.com" registered
-- next to "john@example.com").
--
-- username and email keep the spelling the user typed, for display (the application stores
-- it NFKC-normalized from now on). username_normalized and email_normalized hold the compared
-- form and carry the unique constraints. The application writes them on every insert:
-- PostgreSQL has no Unicode case folding. A row inserted by hand must fill them too.

ALTER TABLE users
    ADD COLUMN username_normalized text,
    ADD COLUMN email_normalized text;

-- ---------------------------------------------------------------- backfill
-- The auth-cache trigger (0005) would send one notification per row about columns the cache
-- does not hold; it is off for this backfill only, inside this migration's transaction.
ALTER TABLE users DISABLE TRIGGER users_notify_auth_change;

-- username_normalized = lower(username) is exact: users_username_format_check has always
-- kept usernames ASCII, where lower() and case folding agree. No two existing usernames
-- collide: users_username_lower_key kept lower(username) unique.
--
-- email_normalized = lower(normalize(email, NFKC)) is exact for ASCII emails. For other
-- letters lower() stands in for case folding; the two differ for a few ("ß" folds to "ss"),
-- so an existing non-ASCII email may miss a collision with a later spelling that only
-- folding unifies. Every email registered from now on gets the exact form.
UPDATE users SET
    username_normalized = lower(username),
    email_normalized    = lower(normalize(email, NFKC));

-- Existing emails that collide in the new form (an account opened with a fullwidth or
-- ligature copy of another account's email before this migration) are neither merged nor
-- deleted, and the migration does not stop: the oldest account (lowest id) keeps the
-- normalized email; each newer one gets
--     '<normalized email> (look-alike of user <oldest id>, kept apart as user <id>)'
-- which no registration can equal (emails hold no spaces) and which names both accounts.
-- Those accounts keep their email as typed and log in as before; nobody can register that
-- email again. Each is reported as a WARNING (the PostgreSQL log has it); list them with
--     SELECT id, username, email, email_normalized FROM users
--     WHERE email_normalized LIKE '% (look-alike of user %';
DO $$
DECLARE
    kept_apart record;
BEGIN
    FOR kept_apart IN
        WITH ranked AS (
            SELECT id, email_normalized,
                   min(id) OVER (PARTITION BY email_normalized) AS oldest_id
            FROM users
        )
        UPDATE users u
        SET email_normalized = r.email_normalized || ' (look-alike of user ' || r.oldest_id
                               || ', kept apart as user ' || r.id || ')'
        FROM ranked r
        WHERE u.id = r.id AND r.id <> r.oldest_id
        RETURNING u.id, u.email, r.oldest_id
    LOOP
        RAISE WARNING 'users: email % of user % looks like the email of user %; user % keeps '
                      'it, user % is kept apart (see 0008_normalized_user_names.sql)',
                      kept_apart.email, kept_apart.id, kept_apart.oldest_id,
                      kept_apart.oldest_id, kept_apart.id;
    END LOOP;
END
$$;

ALTER TABLE users ENABLE TRIGGER users_notify_auth_change;

-- ---------------------------------------------------------------- the rules
ALTER TABLE users
    ALTER COLUMN username_normalized SET NOT NULL,
    ALTER COLUMN email_normalized SET NOT NULL,
    -- Usernames are ASCII (users_username_format_check), where case folding is lower():
    -- this keeps a writer that forgets the column, or a hand edit, from drifting.
    ADD CONSTRAINT users_username_normalized_check CHECK (username_normalized = lower(username)),
    ADD CONSTRAINT users_username_normalized_key UNIQUE (username_normalized),
    ADD CONSTRAINT users_email_normalized_key UNIQUE (email_normalized);

-- Replaced by the two unique constraints above.
DROP INDEX users_username_lower_key;
DROP INDEX users_email_lower_key;

COMMENT ON COLUMN users.username_normalized IS
    'The username as compared at registration and login: NFKC + case folding (names.py).';
COMMENT ON COLUMN users.email_normalized IS
    'The email as compared for uniqueness: NFKC + case folding (names.py); see '
    '0008_normalized_user_names.sql for rows kept apart as look-alikes.';
