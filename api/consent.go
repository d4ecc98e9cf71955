package api

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nudge/nudge"
)

// maxConsentBytes caps a consent POST body.
const maxConsentBytes = 256 << 10

// consentRequest is one consent change in a POST body.
type consentRequest struct {
	Channel    string                `json:"channel"`
	Purpose    string                `json:"purpose"`
	Status     string                `json:"status"`
	Source     string                `json:"source"`
	Evidence   nudge.ConsentEvidence `json:"evidence"`
	OccurredAt string                `json:"occurred_at"`
}

// consentResponse is the answer to GET /v1/contacts/{id}/consent.
type consentResponse struct {
	ContactID string                `json:"contact_id"`
	Consent   []*nudge.ConsentState `json:"consent"`
	Ledger    []*nudge.ConsentEntry `json:"ledger"`
}

func (s *Server) handleConsentGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	states, err := s.store.ConsentList(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := consentResponse{ContactID: id, Consent: fillConsent(states), Ledger: []*nudge.ConsentEntry{}}
	p := &nudge.ConsentLedgerParams{ContactID: id, Limit: 1000}
	for {
		entries, err := s.store.ConsentLedger(r.Context(), p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp.Ledger = append(resp.Ledger, entries...)
		if len(entries) < p.Limit {
			break
		}
		p.AfterID = entries[len(entries)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

// fillConsent returns one state per channel and purpose, in the order of
// nudge.Channels and nudge.Purposes, unknown where nothing was recorded.
func fillConsent(states []*nudge.ConsentState) []*nudge.ConsentState {
	out := make([]*nudge.ConsentState, 0, len(nudge.Channels)*len(nudge.Purposes))
	for _, ch := range nudge.Channels {
		for _, pu := range nudge.Purposes {
			st := &nudge.ConsentState{Channel: ch, Purpose: pu, Status: nudge.ConsentUnknown}
			for _, x := range states {
				if x.Channel == ch && x.Purpose == pu {
					st = x
				}
			}
			out = append(out, st)
		}
	}
	return out
}

// consentBatchResponse answers a POST of an array of consent changes.
type consentBatchResponse struct {
	Entries []*nudge.ConsentEntry `json:"entries"`
	Errors  []itemError           `json:"errors,omitempty"`
	Error   *errorBody            `json:"error,omitempty"`
}

// handleConsentRecord appends one change (a JSON object: 201 with the entry)
// or several (a JSON array: 201 with the entries and the per-item errors if
// at least one was recorded; otherwise the first error's status).
func (s *Server) handleConsentRecord(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := readBody(w, r, maxConsentBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var reqs []consentRequest
	single := len(bytes.TrimSpace(body)) == 0 || bytes.TrimSpace(body)[0] != '['
	if single {
		var one consentRequest
		if err := decodeStrict(body, &one); err != nil {
			s.fail(w, r, err)
			return
		}
		reqs = []consentRequest{one}
	} else if err := decodeStrict(body, &reqs); err != nil {
		s.fail(w, r, err)
		return
	}

	now := s.clock.Now()
	errs := make([]error, len(reqs))
	var params []*nudge.ConsentRecordParams
	var index []int // params[i] is reqs[index[i]]
	for i, q := range reqs {
		p, err := q.params(id)
		if err != nil {
			errs[i] = err
			continue
		}
		params = append(params, p)
		index = append(index, i)
	}
	entries := make([]*nudge.ConsentEntry, len(reqs))
	if len(params) > 0 {
		res, err := s.store.ConsentRecord(r.Context(), params, now)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for j, x := range res {
			entries[index[j]], errs[index[j]] = x.Entry, x.Err
		}
	}

	if single {
		if errs[0] != nil {
			s.fail(w, r, errs[0])
			return
		}
		writeJSON(w, http.StatusCreated, entries[0])
		return
	}
	resp := consentBatchResponse{Entries: []*nudge.ConsentEntry{}}
	for i, err := range errs {
		if err != nil {
			b := newErrorBody(nudge.WithField(fmt.Sprintf("[%d]", i), err))
			resp.Errors = append(resp.Errors, itemError{Index: i, Code: b.Code, Field: b.Field, Message: b.Message})
			continue
		}
		resp.Entries = append(resp.Entries, entries[i])
	}
	status := http.StatusCreated
	if len(resp.Entries) == 0 && len(resp.Errors) > 0 {
		e := resp.Errors[0]
		resp.Error = &errorBody{Code: e.Code, Field: e.Field, Message: e.Message}
		status = errorStatus(e.Code)
	}
	writeJSON(w, status, resp)
}

// params validates q and fills its defaults: purpose marketing, source api,
// occurred now.
func (q consentRequest) params(contactID string) (*nudge.ConsentRecordParams, error) {
	p := &nudge.ConsentRecordParams{
		ContactID: contactID,
		Channel:   q.Channel,
		Purpose:   q.Purpose,
		Status:    q.Status,
		Source:    q.Source,
		Evidence:  q.Evidence,
	}
	if p.Purpose == "" {
		p.Purpose = nudge.PurposeMarketing
	}
	if p.Source == "" {
		p.Source = nudge.SourceAPI
	}
	if q.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, q.OccurredAt)
		if err != nil {
			return nil, nudge.FieldErrorf("occurred_at", "%q is not an RFC 3339 time (2026-03-02T09:00:00Z)", q.OccurredAt)
		}
		p.OccurredAt = t.UTC()
	}
	if err := nudge.ValidateConsentParams(p); err != nil {
		return nil, err
	}
	return p, nil
}

// ledgerHeader is the first line of the ledger CSV export.
var ledgerHeader = []string{"id", "contact_id", "address_hash", "channel", "purpose", "status", "source",
	"evidence_text", "evidence_form_url", "evidence_ip", "evidence_keyword", "occurred_at", "recorded_at"}

// handleLedgerCSV streams the consent ledger (or one contact's) as CSV, a
// page at a time. The first page is read before anything is written, so a
// database failure still gets a proper error status; a failure later cuts
// the connection rather than leave a file that looks complete.
func (s *Server) handleLedgerCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "contact_id" {
			s.fail(w, r, nudge.FieldErrorf(k, "unknown query parameter; the only one is contact_id"))
			return
		}
	}
	p := &nudge.ConsentLedgerParams{ContactID: q.Get("contact_id"), Limit: 1000}
	if p.ContactID != "" {
		if _, err := s.store.ContactGet(r.Context(), p.ContactID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	entries, err := s.store.ConsentLedger(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name := "consent-ledger.csv"
	if p.ContactID != "" {
		name = "consent-ledger-" + safeFileName(p.ContactID) + ".csv"
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(ledgerHeader)
	for {
		for _, e := range entries {
			_ = cw.Write([]string{
				strconv.FormatInt(e.ID, 10), csvCell(e.ContactID), e.AddressHash, e.Channel, e.Purpose, e.Status, e.Source,
				csvCell(e.Evidence.Text), csvCell(e.Evidence.FormURL), csvCell(e.Evidence.IP), csvCell(e.Evidence.Keyword),
				e.OccurredAt.UTC().Format(time.RFC3339Nano), e.RecordedAt.UTC().Format(time.RFC3339Nano),
			})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return // the client went away
		}
		if len(entries) < p.Limit {
			return
		}
		p.AfterID = entries[len(entries)-1].ID
		if entries, err = s.store.ConsentLedger(r.Context(), p); err != nil {
			s.logger.ErrorContext(r.Context(), "consent ledger export failed", slog.Any("error", err))
			panic(http.ErrAbortHandler)
		}
	}
}

// csvCell defuses spreadsheet formula injection (OWASP): a free-text cell
// that a spreadsheet would evaluate gets a leading apostrophe.
func csvCell(v string) string {
	if v != "" && bytes.ContainsRune([]byte("=+-@\t\r"), rune(v[0])) {
		return "'" + v
	}
	return v
}

// safeFileName keeps the characters that are harmless in a header value.
func safeFileName(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}
