package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nudge/nudge"
)

var _ nudge.UserStore = (*DB)(nil)

// checkUser validates a new user and lower-cases its email in place, so that
// the caller holds what was stored.
func checkUser(u *nudge.User) error {
	if u == nil || u.ID == "" {
		return nudge.FieldErrorf("id", "required")
	}
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	switch {
	case u.Email == "":
		return nudge.FieldErrorf("email", "required")
	case !slices.Contains(nudge.UserRoles, u.Role):
		return nudge.FieldErrorf("role", "%q is not one of %s", u.Role, strings.Join(nudge.UserRoles, ", "))
	case len(u.PasswordHash) == 0:
		return nudge.FieldErrorf("password_hash", "required")
	}
	return nil
}

// constraint names the constraint a unique or foreign-key violation broke.
func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

const userColumns = `id, email, role, password_hash, created_at`

func scanUser(row pgx.Row) (*nudge.User, error) {
	var u nudge.User
	if err := row.Scan(&u.ID, &u.Email, &u.Role, &u.PasswordHash, &u.CreatedAt); err != nil {
		return nil, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}

// UserCreate stores a new user; ECONFLICT if the email (or the id) is taken.
func (db *DB) UserCreate(ctx context.Context, u *nudge.User) error {
	if err := checkUser(u); err != nil {
		return fmt.Errorf("user create: %w", err)
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Email, u.Role, u.PasswordHash, utc(u.CreatedAt))
	if sqlState(err) == "23505" {
		if constraint(err) == "users_email_key" {
			return fmt.Errorf("user create: %w", nudge.Errorf(nudge.ECONFLICT, "a user with email %q exists", u.Email))
		}
		return fmt.Errorf("user create: %w", nudge.Errorf(nudge.ECONFLICT, "a user with id %q exists", u.ID))
	}
	return wrap("user create", err)
}

// UserGet returns a user by id, or ENOTFOUND.
func (db *DB) UserGet(ctx context.Context, id string) (*nudge.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user get: %w", nudge.Errorf(nudge.ENOTFOUND, "user %q not found", id))
	}
	if err != nil {
		return nil, wrap("user get", err)
	}
	return u, nil
}

// UserByEmail returns a user by (case-insensitive) email, or ENOTFOUND.
func (db *DB) UserByEmail(ctx context.Context, email string) (*nudge.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user by email: %w", nudge.Errorf(nudge.ENOTFOUND, "no user with email %q", email))
	}
	if err != nil {
		return nil, wrap("user by email", err)
	}
	return u, nil
}

// UserList returns all users, by email.
func (db *DB) UserList(ctx context.Context) ([]*nudge.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY email`)
	if err != nil {
		return nil, wrap("user list", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.User, error) { return scanUser(r) })
	if err != nil {
		return nil, wrap("user list", err)
	}
	if us == nil {
		us = []*nudge.User{}
	}
	return us, nil
}

// SessionCreate stores a session; ENOTFOUND if its user does not exist,
// ECONFLICT if its token hash is taken.
func (db *DB) SessionCreate(ctx context.Context, s *nudge.Session) error {
	switch {
	case s == nil || len(s.TokenHash) == 0:
		return fmt.Errorf("session create: %w", nudge.FieldErrorf("token_hash", "required"))
	case s.UserID == "":
		return fmt.Errorf("session create: %w", nudge.FieldErrorf("user_id", "required"))
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`,
		s.TokenHash, s.UserID, s.CSRF, utc(s.CreatedAt), utc(s.ExpiresAt))
	switch sqlState(err) {
	case "23505":
		return fmt.Errorf("session create: %w", nudge.Errorf(nudge.ECONFLICT, "a session with this token exists"))
	case "23503":
		return fmt.Errorf("session create: %w", nudge.Errorf(nudge.ENOTFOUND, "user %q not found", s.UserID))
	}
	return wrap("session create", err)
}

// SessionGet returns an unexpired session by token hash, or ENOTFOUND. A
// session expires at ExpiresAt: at that instant it is gone.
func (db *DB) SessionGet(ctx context.Context, tokenHash []byte, now time.Time) (*nudge.Session, error) {
	var s nudge.Session
	err := db.pool.QueryRow(ctx, `SELECT token_hash, user_id, csrf, created_at, expires_at
		FROM sessions WHERE token_hash = $1 AND expires_at > $2`, tokenHash, utc(now)).
		Scan(&s.TokenHash, &s.UserID, &s.CSRF, &s.CreatedAt, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("session get: %w", nudge.Errorf(nudge.ENOTFOUND, "session not found or expired"))
	}
	if err != nil {
		return nil, wrap("session get", err)
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return &s, nil
}

// SessionDelete removes a session (sign-out); no error if it is gone.
func (db *DB) SessionDelete(ctx context.Context, tokenHash []byte) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return wrap("session delete", err)
}
