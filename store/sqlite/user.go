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

// UserCreate stores a new user; ECONFLICT if the email (or the id) is taken.
func (db *DB) UserCreate(ctx context.Context, u *nudge.User) error {
	if err := checkUser(u); err != nil {
		return fmt.Errorf("sqlite: user create: %w", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, role, password_hash, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			u.ID, u.Email, u.Role, u.PasswordHash, micros(u.CreatedAt))
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			return nil
		}
		var taken bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = ?)`, u.Email).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return nudge.Errorf(nudge.ECONFLICT, "a user with email %q exists", u.Email)
		}
		return nudge.Errorf(nudge.ECONFLICT, "a user with id %q exists", u.ID)
	})
	if err != nil {
		return fmt.Errorf("sqlite: user create: %w", err)
	}
	return nil
}

const userColumns = `id, email, role, password_hash, created_at`

func scanUser(s scanner) (*nudge.User, error) {
	var (
		u       nudge.User
		created int64
	)
	if err := s.Scan(&u.ID, &u.Email, &u.Role, &u.PasswordHash, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// UserGet returns a user by id, or ENOTFOUND.
func (db *DB) UserGet(ctx context.Context, id string) (*nudge.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "user %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: user get: %w", err)
	}
	return u, nil
}

// UserByEmail returns a user by (case-insensitive) email, or ENOTFOUND.
func (db *DB) UserByEmail(ctx context.Context, email string) (*nudge.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "no user with email %q", email)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: user by email: %w", err)
	}
	return u, nil
}

// UserList returns all users, by email.
func (db *DB) UserList(ctx context.Context) ([]*nudge.User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user list: %w", err)
	}
	defer rows.Close()
	us := []*nudge.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: user list: %w", err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: user list: %w", err)
	}
	return us, nil
}

// SessionCreate stores a session; ENOTFOUND if its user does not exist,
// ECONFLICT if its token hash is taken.
func (db *DB) SessionCreate(ctx context.Context, s *nudge.Session) error {
	switch {
	case s == nil || len(s.TokenHash) == 0:
		return nudge.FieldErrorf("token_hash", "required")
	case s.UserID == "":
		return nudge.FieldErrorf("user_id", "required")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var ok bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`, s.UserID).Scan(&ok); err != nil {
			return err
		} else if !ok {
			return nudge.Errorf(nudge.ENOTFOUND, "user %q not found", s.UserID)
		}
		r, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_hash) DO NOTHING`,
			s.TokenHash, s.UserID, s.CSRF, micros(s.CreatedAt), micros(s.ExpiresAt))
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nudge.Errorf(nudge.ECONFLICT, "a session with this token exists")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: session create: %w", err)
	}
	return nil
}

// SessionGet returns an unexpired session by token hash, or ENOTFOUND. A
// session expires at ExpiresAt: at that instant it is gone.
func (db *DB) SessionGet(ctx context.Context, tokenHash []byte, now time.Time) (*nudge.Session, error) {
	var (
		s                nudge.Session
		created, expires int64
	)
	err := db.read.QueryRowContext(ctx, `SELECT token_hash, user_id, csrf, created_at, expires_at
		FROM sessions WHERE token_hash = ? AND expires_at > ?`, tokenHash, micros(now)).
		Scan(&s.TokenHash, &s.UserID, &s.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "session not found or expired")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: session get: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &s, nil
}

// SessionDelete removes a session (sign-out); no error if it is gone.
func (db *DB) SessionDelete(ctx context.Context, tokenHash []byte) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: session delete: %w", err)
	}
	return nil
}
