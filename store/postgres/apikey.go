package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

const apiKeyColumns = `id, name, role, hash, created_at, revoked_at`

func scanAPIKey(row pgx.Row) (*nudge.APIKey, error) {
	var k nudge.APIKey
	if err := row.Scan(&k.ID, &k.Name, &k.Role, &k.Hash, &k.CreatedAt, &k.RevokedAt); err != nil {
		return nil, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if k.RevokedAt != nil {
		t := k.RevokedAt.UTC()
		k.RevokedAt = &t
	}
	return &k, nil
}

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
	var revoked *time.Time
	if k.RevokedAt != nil {
		t := utc(*k.RevokedAt)
		revoked = &t
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.Name, k.Role, k.Hash, utc(k.CreatedAt), revoked)
	if sqlState(err) == "23505" {
		return fmt.Errorf("api key create: %w", nudge.Errorf(nudge.ECONFLICT, "an API key with id %q exists", k.ID))
	}
	return wrap("api key create", err)
}

// APIKeyGet returns a key by id, revoked or not, or ENOTFOUND.
func (db *DB) APIKeyGet(ctx context.Context, id string) (*nudge.APIKey, error) {
	k, err := scanAPIKey(db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("api key get: %w", apiKeyNotFound(id))
	}
	if err != nil {
		return nil, wrap("api key get", err)
	}
	return k, nil
}

func apiKeyNotFound(id string) error {
	return nudge.Errorf(nudge.ENOTFOUND, "API key %q not found", id)
}

// APIKeyList returns all keys, oldest first.
func (db *DB) APIKeyList(ctx context.Context) ([]*nudge.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap("api key list", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, wrap("api key list", err)
	}
	if ks == nil {
		ks = []*nudge.APIKey{}
	}
	return ks, nil
}

// APIKeyRevoke marks a key revoked; revoking it again keeps the first time.
// ENOTFOUND if it does not exist.
func (db *DB) APIKeyRevoke(ctx context.Context, id string, now time.Time) error {
	var ok bool
	err := db.pool.QueryRow(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING true`, id, utc(now)).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("api key revoke: %w", apiKeyNotFound(id))
	}
	return wrap("api key revoke", err)
}
