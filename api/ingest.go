package api

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

// readBody reads r's body up to limit bytes. A bigger body is an ETOOLARGE
// error naming the limit and the route. A gzip body (Content-Encoding: gzip,
// as some Segment libraries send) is limited before and after decompression.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := func() error {
		return nudge.Errorf(nudge.ETOOLARGE, "request body is over %d bytes, the limit for %s", limit, r.URL.Path)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge()
			}
			return nil, nudge.FieldErrorf("Content-Encoding", "the body is not gzip data: %v", err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, limit+1)
	default:
		return nil, nudge.FieldErrorf("Content-Encoding", "%q is not supported; send identity or gzip", ce)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, nudge.Errorf(nudge.EINVALID, "reading the request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge()
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if err := checkBody(b, !strings.Contains(ct, "yaml") && !strings.Contains(ct, "form")); err != nil {
		return nil, err
	}
	return b, nil
}

// ingestResponse answers an ingest call. Single calls answer
// {"success":true} as Segment does.
type ingestResponse struct {
	Success    bool        `json:"success"`
	Duplicate  bool        `json:"duplicate,omitempty"`
	Stored     *int        `json:"stored,omitempty"`
	Duplicates *int        `json:"duplicates,omitempty"`
	Errors     []itemError `json:"errors,omitempty"`
	Error      *errorBody  `json:"error,omitempty"`
}

// itemError reports one rejected batch item.
type itemError struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// eventType is the metric label of an item's type.
func eventType(item nudge.IngestItem) string {
	if item.Event != nil && item.Event.Type != "" {
		return item.Event.Type
	}
	return "unknown"
}

// handleCall serves /v1/identify, /v1/track and /v1/page.
func (s *Server) handleCall(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		typ := nudge.EventTrack // page and screen calls become track events
		if kind == nudge.EventIdentify {
			typ = nudge.EventIdentify
		}
		body, err := readBody(w, r, ingest.MaxCallBytes)
		if err != nil {
			s.metrics.ingestEvents.WithLabelValues(typ, "rejected").Inc()
			s.fail(w, r, err)
			return
		}
		now := s.clock.Now()
		item, err := s.parser.ParseCall(kind, body, now)
		if err != nil {
			s.metrics.ingestEvents.WithLabelValues(typ, "rejected").Inc()
			s.fail(w, r, err)
			return
		}
		res, err := s.store.EventIngest(r.Context(), []nudge.IngestItem{item}, now)
		if err != nil {
			s.fail(w, r, fmt.Errorf("ingest %s: %w", kind, err))
			return
		}
		dup := len(res.Duplicate) > 0 && res.Duplicate[0]
		s.metrics.ingestEvents.WithLabelValues(eventType(item), outcome(dup)).Inc()
		writeJSON(w, http.StatusOK, ingestResponse{Success: true, Duplicate: dup})
	}
}

func outcome(duplicate bool) string {
	if duplicate {
		return "duplicate"
	}
	return "stored"
}

// handleBatch serves /v1/batch: the valid items are stored in one
// transaction, the invalid ones reported by index and field path.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, ingest.MaxBatchBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.clock.Now()
	parsed, err := s.parser.ParseBatch(body, now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.batchSize.Observe(float64(len(parsed)))

	var (
		items []nudge.IngestItem
		errs  []itemError
	)
	for _, p := range parsed {
		if p.Err != nil {
			b := newErrorBody(p.Err)
			errs = append(errs, itemError{Index: p.Index, Code: b.Code, Field: b.Field, Message: b.Message})
			s.metrics.ingestEvents.WithLabelValues(eventType(p.Item), "rejected").Inc()
			continue
		}
		items = append(items, p.Item)
	}
	stored, dups := 0, 0
	if len(items) > 0 {
		res, err := s.store.EventIngest(r.Context(), items, now)
		if err != nil {
			s.fail(w, r, fmt.Errorf("ingest batch: %w", err))
			return
		}
		for i, item := range items {
			dup := i < len(res.Duplicate) && res.Duplicate[i]
			if dup {
				dups++
			} else {
				stored++
			}
			s.metrics.ingestEvents.WithLabelValues(eventType(item), outcome(dup)).Inc()
		}
	}
	resp := ingestResponse{Success: true, Stored: &stored, Duplicates: &dups, Errors: errs}
	status := http.StatusOK
	if len(items) == 0 && len(errs) > 0 {
		// Nothing was accepted: the whole request failed.
		first := errorBody{Code: errs[0].Code, Field: errs[0].Field, Message: errs[0].Message}
		resp.Success, resp.Error = false, &first
		status = errorStatus(first.Code)
	}
	writeJSON(w, status, resp)
}
