-- 0006: console users and their sessions. A session keeps the SHA-256 of
-- the browser's token, never the token; expired rows are ignored by reads
-- and can be pruned by expires_at. Columns mirror store/sqlite.

CREATE TABLE users (
	id            text COLLATE "C" PRIMARY KEY,
	email         text COLLATE "C" NOT NULL CHECK (email = lower(email) AND email <> ''),
	role          text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
	password_hash bytea NOT NULL,
	created_at    timestamptz NOT NULL,
	CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE sessions (
	token_hash bytea PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf       text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
