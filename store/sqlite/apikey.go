package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// APIKeyCreate stores a new key; ECONFLICT if its id is taken.
func (db *DB) APIKeyCreate(ctx context.Context, k *nudge.APIKey) error {
	switch {
	case k == nil || k.ID == "":
		return nudge.FieldErrorf("id", "required")
	case !slices.Contains(nudge.Roles, k.Role):
		return nudge.FieldErrorf("role", "%q is not one of %s", k.Role, strings.Join(nudge.Roles, ", "))
	case len(k.Hash) == 0:
		return nudge.FieldErrorf("hash", "required")
	}
	var revoked any
	if k.RevokedAt != nil {
		revoked = micros(*k.RevokedAt)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, name, role, hash, created_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			k.ID, k.Name, k.Role, k.Hash, micros(k.CreatedAt), revoked)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nudge.Errorf(nudge.ECONFLICT, "an API key with id %q exists", k.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: api key create: %w", err)
	}
	return nil
}

const apiKeyColumns = `id, name, role, hash, created_at, revoked_at`

func scanAPIKey(s scanner) (*nudge.APIKey, error) {
	var (
		k       nudge.APIKey
		created int64
		revoked sql.NullInt64
	)
	if err := s.Scan(&k.ID, &k.Name, &k.Role, &k.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(created)
	if revoked.Valid {
		t := fromMicros(revoked.Int64)
		k.RevokedAt = &t
	}
	return &k, nil
}

// APIKeyGet returns a key by id, revoked or not, or ENOTFOUND.
func (db *DB) APIKeyGet(ctx context.Context, id string) (*nudge.APIKey, error) {
	k, err := scanAPIKey(db.read.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "API key %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: api key get: %w", err)
	}
	return k, nil
}

// APIKeyList returns all keys, oldest first.
func (db *DB) APIKeyList(ctx context.Context) ([]*nudge.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: api key list: %w", err)
	}
	defer rows.Close()
	keys := []*nudge.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: api key list: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: api key list: %w", err)
	}
	return keys, nil
}

// APIKeyRevoke marks a key revoked; ENOTFOUND if it does not exist.
// Revoking a revoked key keeps the first revocation time.
func (db *DB) APIKeyRevoke(ctx context.Context, id string, now time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`,
			micros(now), id)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nudge.Errorf(nudge.ENOTFOUND, "API key %q not found", id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: api key revoke: %w", err)
	}
	return nil
}
