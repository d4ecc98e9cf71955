-- 0006: console users and their sessions. A session keeps the SHA-256 of
-- the browser's token, never the token; expired rows are ignored by reads
-- and can be pruned by expires_at.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
	role          TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
	password_hash BLOB NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	token_hash BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
