-- Every server process keeps users and revoked tokens in memory to authenticate requests
-- without a query (expertconnect/authcache.py). These triggers tell every process, on commit,
-- about any change to them, whoever makes it: the application or a DBA in psql.
-- Payloads on channel expertconnect_auth: 'user <id>' and 'revoke <jti> <expiry epoch>'.

CREATE FUNCTION notify_auth_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('expertconnect_auth', 'user ' || OLD.id);
    ELSE
        PERFORM pg_notify('expertconnect_auth',
                          'revoke ' || NEW.jti || ' ' || extract(epoch FROM NEW.expires_at));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_auth_change() IS
    'Invalidates the servers'' in-memory authentication cache; see 0005_auth_cache_notify.sql.';

CREATE TRIGGER users_notify_auth_change
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_auth_change();

CREATE TRIGGER revoked_tokens_notify_auth_change
    AFTER INSERT ON revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_auth_change();
