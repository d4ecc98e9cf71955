package api

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/nudge/nudge"
)

func TestUnavailable(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"code unavailable", nudge.Errorf(nudge.EUNAVAILABLE, "db down"), true},
		{"wrapped net error", fmt.Errorf("sqlite: contact get: %w", opErr), true},
		{"bad conn", fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{"conn done", fmt.Errorf("x: %w", sql.ErrConnDone), true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"refused text", errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), true},
		{"closed sql.DB", errors.New("sqlite: contact get: sql: database is closed"), true},
		{"closed pgxpool", errors.New("postgres: closed pool"), true},
		{"not found", nudge.ErrNotFound, false},
		{"invalid", nudge.FieldErrorf("phone", "bad"), false},
		{"other", errors.New("constraint failed"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unavailable(tc.err); got != tc.want {
				t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   string
		status int
	}{
		{"invalid", nudge.FieldErrorf("phone", "bad"), nudge.EINVALID, http.StatusBadRequest},
		{"not found wrapped", fmt.Errorf("get: %w", nudge.ErrNotFound), nudge.ENOTFOUND, http.StatusNotFound},
		{"conflict", nudge.Errorf(nudge.ECONFLICT, "no"), nudge.ECONFLICT, http.StatusConflict},
		{"unauthorized", nudge.Errorf(nudge.EUNAUTHORIZED, "no"), nudge.EUNAUTHORIZED, http.StatusUnauthorized},
		{"forbidden", nudge.Errorf(nudge.EFORBIDDEN, "no"), nudge.EFORBIDDEN, http.StatusForbidden},
		{"too large", nudge.Errorf(nudge.ETOOLARGE, "no"), nudge.ETOOLARGE, http.StatusRequestEntityTooLarge},
		{"connection refused", fmt.Errorf("q: %w", syscall.ECONNREFUSED), nudge.EUNAVAILABLE, http.StatusServiceUnavailable},
		{"internal", errors.New("boom"), nudge.EINTERNAL, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := errorCode(tc.err)
			if code != tc.code || errorStatus(code) != tc.status {
				t.Errorf("errorCode = %q (status %d), want %q (%d)", code, errorStatus(code), tc.code, tc.status)
			}
		})
	}
}

func TestNewErrorBodyHidesInternals(t *testing.T) {
	b := newErrorBody(errors.New("pq: password authentication failed for user admin"))
	if b.Message != "internal error" {
		t.Errorf("message = %q, want the generic text", b.Message)
	}
}
