package nudge

import (
	"context"
	"time"
)

// Console user roles: an admin manages users and settings, an editor
// publishes, pauses and simulates journeys, a viewer reads.
const (
	UserAdmin  = "admin"
	UserEditor = "editor"
	UserViewer = "viewer"
)

// UserRoles lists the valid console roles.
var UserRoles = []string{UserAdmin, UserEditor, UserViewer}

// User is a person who signs in to the web console.
type User struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"` // lower-cased; unique
	Role         string    `json:"role"`
	PasswordHash []byte    `json:"-"` // bcrypt
	CreatedAt    time.Time `json:"created_at"`
}

// Session is a signed-in console session. The token given to the browser is
// never stored, only its SHA-256 (TokenHash), like API keys.
type Session struct {
	TokenHash []byte
	UserID    string
	CSRF      string // the session's CSRF token, echoed by every form
	CreatedAt time.Time
	ExpiresAt time.Time
}

// UserStore keeps console users and their sessions.
type UserStore interface {
	// UserCreate stores a new user; ECONFLICT if the email is taken.
	UserCreate(ctx context.Context, u *User) error
	// UserGet returns a user by id, or ENOTFOUND.
	UserGet(ctx context.Context, id string) (*User, error)
	// UserByEmail returns a user by (case-insensitive) email, or ENOTFOUND.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UserList returns all users, by email.
	UserList(ctx context.Context) ([]*User, error)
	// SessionCreate stores a session.
	SessionCreate(ctx context.Context, s *Session) error
	// SessionGet returns an unexpired session by token hash, or ENOTFOUND.
	SessionGet(ctx context.Context, tokenHash []byte, now time.Time) (*Session, error)
	// SessionDelete removes a session (sign-out); no error if it is gone.
	SessionDelete(ctx context.Context, tokenHash []byte) error
}
