package storetest

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func testUser(t *testing.T, open func(t *testing.T) nudge.Store) {
	t.Run("users", func(t *testing.T) { testUsers(t, open) })
	t.Run("sessions", func(t *testing.T) { testSessions(t, open) })
}

func mustUser(t testing.TB, s nudge.Store, id, email, role string) *nudge.User {
	t.Helper()
	u := &nudge.User{ID: id, Email: email, Role: role, PasswordHash: []byte("$2a$12$hash-of-" + id), CreatedAt: now}
	if err := s.UserCreate(ctx, u); err != nil {
		t.Fatalf("UserCreate(%s): %v", email, err)
	}
	return u
}

func testUsers(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	if got, err := s.UserList(ctx); err != nil || len(got) != 0 {
		t.Fatalf("UserList on an empty store = %v, %v; want none", got, err)
	}
	ann := mustUser(t, s, "u1", "  Ann@Example.COM ", nudge.UserAdmin)
	if ann.Email != "ann@example.com" {
		t.Errorf("UserCreate left Email %q, want it lower-cased and trimmed", ann.Email)
	}
	bob := mustUser(t, s, "u2", "bob@example.com", nudge.UserViewer)
	abe := mustUser(t, s, "u3", "abe@example.com", nudge.UserEditor)

	t.Run("get", func(t *testing.T) {
		got, err := s.UserGet(ctx, "u1")
		if err != nil {
			t.Fatalf("UserGet: %v", err)
		}
		want := &nudge.User{ID: "u1", Email: "ann@example.com", Role: nudge.UserAdmin, PasswordHash: []byte("$2a$12$hash-of-u1"), CreatedAt: now}
		if d := diff(want, got); d != "" {
			t.Errorf("UserGet (-want +got):\n%s", d)
		}
		wantUTC(t, "user", got.CreatedAt)
	})

	t.Run("by email, any case", func(t *testing.T) {
		for _, email := range []string{"ann@example.com", "ANN@example.com", " Ann@Example.Com"} {
			got, err := s.UserByEmail(ctx, email)
			if err != nil {
				t.Fatalf("UserByEmail(%q): %v", email, err)
			}
			if d := diff(ann, got); d != "" {
				t.Errorf("UserByEmail(%q) (-want +got):\n%s", email, d)
			}
		}
	})

	t.Run("list, by email", func(t *testing.T) {
		got, err := s.UserList(ctx)
		if err != nil {
			t.Fatalf("UserList: %v", err)
		}
		if d := diff([]*nudge.User{abe, ann, bob}, got); d != "" {
			t.Errorf("UserList (-want +got):\n%s", d)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := s.UserGet(ctx, "nope")
		wantCode(t, "UserGet(nope)", err, nudge.ENOTFOUND)
		_, err = s.UserByEmail(ctx, "nobody@example.com")
		wantCode(t, "UserByEmail(nobody)", err, nudge.ENOTFOUND)
	})

	t.Run("email taken, any case", func(t *testing.T) {
		dup := &nudge.User{ID: "u4", Email: "BOB@example.com", Role: nudge.UserAdmin, PasswordHash: []byte("x"), CreatedAt: now}
		err := s.UserCreate(ctx, dup)
		wantCode(t, "UserCreate with an email taken", err, nudge.ECONFLICT)
		if !strings.Contains(err.Error(), "bob@example.com") {
			t.Errorf("conflict error %q does not name the email", err)
		}
		if _, err := s.UserGet(ctx, "u4"); nudge.ErrorCode(err) != nudge.ENOTFOUND {
			t.Errorf("the conflicting user was stored: UserGet(u4) error %v", err)
		}
	})

	t.Run("id taken", func(t *testing.T) {
		dup := &nudge.User{ID: "u1", Email: "new@example.com", Role: nudge.UserAdmin, PasswordHash: []byte("x"), CreatedAt: now}
		wantCode(t, "UserCreate with an id taken", s.UserCreate(ctx, dup), nudge.ECONFLICT)
	})

	t.Run("invalid", func(t *testing.T) {
		for name, u := range map[string]*nudge.User{
			"no id":       {Email: "x@example.com", Role: nudge.UserAdmin, PasswordHash: []byte("x")},
			"no email":    {ID: "x", Email: " ", Role: nudge.UserAdmin, PasswordHash: []byte("x")},
			"no password": {ID: "x", Email: "x@example.com", Role: nudge.UserAdmin},
			"bad role":    {ID: "x", Email: "x@example.com", Role: "owner", PasswordHash: []byte("x")},
		} {
			t.Run(name, func(t *testing.T) {
				err := s.UserCreate(ctx, u)
				wantCode(t, "UserCreate", err, nudge.EINVALID)
				if name == "bad role" {
					for _, r := range nudge.UserRoles {
						if !strings.Contains(err.Error(), r) {
							t.Errorf("error %q does not name the valid role %q", err, r)
						}
					}
				}
			})
		}
		list, err := s.UserList(ctx)
		if err != nil || len(list) != 3 {
			t.Errorf("UserList after invalid creates = %d users, %v; want 3", len(list), err)
		}
	})
}

func testSessions(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	u := mustUser(t, s, "u1", "ann@example.com", nudge.UserAdmin)
	hash := func(token string) []byte { h := sha256.Sum256([]byte(token)); return h[:] }
	sess := &nudge.Session{TokenHash: hash("t1"), UserID: u.ID, CSRF: "csrf-1", CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)}
	other := &nudge.Session{TokenHash: hash("t2"), UserID: u.ID, CSRF: "csrf-2", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	for _, x := range []*nudge.Session{sess, other} {
		if err := s.SessionCreate(ctx, x); err != nil {
			t.Fatalf("SessionCreate(%s): %v", x.CSRF, err)
		}
	}

	t.Run("get", func(t *testing.T) {
		got, err := s.SessionGet(ctx, hash("t1"), now.Add(time.Minute))
		if err != nil {
			t.Fatalf("SessionGet: %v", err)
		}
		if d := diff(sess, got); d != "" {
			t.Errorf("SessionGet (-want +got):\n%s", d)
		}
		wantUTC(t, "session", got.CreatedAt, got.ExpiresAt)
	})

	t.Run("unknown token", func(t *testing.T) {
		_, err := s.SessionGet(ctx, hash("nope"), now)
		wantCode(t, "SessionGet(unknown)", err, nudge.ENOTFOUND)
	})

	t.Run("expiry", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			at   time.Time
			code string
		}{
			{"just before", other.ExpiresAt.Add(-time.Microsecond), ""},
			{"at expiry", other.ExpiresAt, nudge.ENOTFOUND},
			{"after", other.ExpiresAt.Add(time.Hour), nudge.ENOTFOUND},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.SessionGet(ctx, other.TokenHash, tc.at)
				wantCode(t, "SessionGet", err, tc.code)
			})
		}
		// The expired session does not hide the user's other one.
		if _, err := s.SessionGet(ctx, sess.TokenHash, other.ExpiresAt.Add(time.Hour)); err != nil {
			t.Errorf("SessionGet of the unexpired session: %v", err)
		}
	})

	t.Run("token taken", func(t *testing.T) {
		dup := *sess
		dup.CSRF = "other"
		wantCode(t, "SessionCreate with a token taken", s.SessionCreate(ctx, &dup), nudge.ECONFLICT)
	})

	t.Run("unknown user", func(t *testing.T) {
		x := &nudge.Session{TokenHash: hash("t3"), UserID: "nope", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		wantCode(t, "SessionCreate for an unknown user", s.SessionCreate(ctx, x), nudge.ENOTFOUND)
	})

	t.Run("invalid", func(t *testing.T) {
		wantCode(t, "SessionCreate without a token hash",
			s.SessionCreate(ctx, &nudge.Session{UserID: u.ID, ExpiresAt: now.Add(time.Hour)}), nudge.EINVALID)
		wantCode(t, "SessionCreate without a user",
			s.SessionCreate(ctx, &nudge.Session{TokenHash: hash("t4"), ExpiresAt: now.Add(time.Hour)}), nudge.EINVALID)
	})

	t.Run("delete", func(t *testing.T) {
		if err := s.SessionDelete(ctx, hash("t1")); err != nil {
			t.Fatalf("SessionDelete: %v", err)
		}
		_, err := s.SessionGet(ctx, hash("t1"), now)
		wantCode(t, "SessionGet after delete", err, nudge.ENOTFOUND)
		if err := s.SessionDelete(ctx, hash("t1")); err != nil {
			t.Errorf("SessionDelete of a gone session: %v", err)
		}
		got, err := s.SessionGet(ctx, hash("t2"), now)
		if err != nil || !bytes.Equal(got.TokenHash, hash("t2")) {
			t.Errorf("the other session after delete = %v, %v", got, err)
		}
	})
}
