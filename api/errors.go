package api

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/nudge/nudge"
)

// errorStatus maps an error code to its HTTP status. It is the only place
// that does.
func errorStatus(code string) int {
	switch code {
	case nudge.EINVALID:
		return http.StatusBadRequest
	case nudge.ENOTFOUND:
		return http.StatusNotFound
	case nudge.ECONFLICT:
		return http.StatusConflict
	case nudge.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case nudge.EFORBIDDEN:
		return http.StatusForbidden
	case nudge.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case nudge.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// unavailable reports whether err means the database cannot be reached right
// now (an EUNAVAILABLE error, a network or driver connection failure, a closed
// database, a deadline) rather than a bug: such requests get 503 and may be
// retried.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	if nudge.ErrorCode(err) == nudge.EUNAVAILABLE {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	// database/sql and pgxpool report a closed handle with unexported
	// errors; SQLite reports a full disk (SQLITE_FULL), a read-only file
	// (SQLITE_READONLY) and a failing disk (SQLITE_IOERR) by message.
	msg := err.Error()
	for _, s := range []string{"connection refused", "database is closed", "closed pool", "broken pipe",
		"database or disk is full", "readonly database", "disk I/O error"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// errorCode classifies err for a response: the code of its *nudge.Error,
// EUNAVAILABLE for a connection failure, EINTERNAL otherwise.
func errorCode(err error) string {
	code := nudge.ErrorCode(err)
	if code == nudge.EINTERNAL && unavailable(err) {
		return nudge.EUNAVAILABLE
	}
	return code
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

type errorResponse struct {
	Error errorBody `json:"error"`
}

// newErrorBody describes err for a client. Internal details are not shown.
func newErrorBody(err error) errorBody {
	code := errorCode(err)
	b := errorBody{Code: code}
	var e *nudge.Error
	switch {
	case errors.As(err, &e) && code == e.Code:
		b.Field, b.Message = e.Field, e.Message
	case code == nudge.EUNAVAILABLE:
		b.Message = "the database is unavailable; retry later"
	default:
		b.Message = "internal error"
	}
	return b
}

// fail writes err as a JSON error response. Failures of the server
// (internal, unavailable) are logged as errors and warnings; a client's
// mistake is logged at info, with its code and field but not its message,
// which may quote the personal data that was refused.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	b := newErrorBody(err)
	switch b.Code {
	default:
		// The route, not the path: a path may hold a contact id that is
		// an email address.
		s.logger.InfoContext(r.Context(), "request refused", slog.String("route", r.Pattern),
			slog.Int("status", errorStatus(b.Code)), slog.String("code", b.Code), slog.String("field", b.Field))
	case nudge.EINTERNAL:
		s.logger.ErrorContext(r.Context(), "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	case nudge.EUNAVAILABLE:
		if r.Context().Err() == nil {
			s.logger.WarnContext(r.Context(), "database unavailable",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
		}
	}
	if b.Code == nudge.EUNAVAILABLE {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, errorStatus(b.Code), errorResponse{Error: b})
}

// writeJSON writes v as the response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}
