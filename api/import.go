package api

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

// handleImport imports contacts from a CSV body, streamed: rows are read and
// stored in batches, so the body can be far larger than memory. Two forms:
//
//   - Content-Type text/csv: the body is the CSV; columns map by header.
//   - Content-Type multipart/form-data: an optional part "mapping" (a
//     mapping file, as for `nudge import --mapping`), then a part "file"
//     with the CSV. The mapping must come first: the CSV is not buffered.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		for k := range r.URL.Query() {
			s.fail(w, r, nudge.FieldErrorf(k, "unknown query parameter; send a mapping as a multipart part named mapping"))
			return
		}
	}
	// A big import outlasts the server's read and write timeouts, which are
	// sized for API calls: lift them for this request (the size cap stays).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	r.Body = http.MaxBytesReader(w, r.Body, s.maxImportBytes)
	csvBody, mapping, err := s.importParts(r)
	if err != nil {
		s.fail(w, r, s.importError(err))
		return
	}
	cr, err := ingest.NewCSVReader(csvBody, mapping, s.contacts)
	if err != nil {
		s.fail(w, r, s.importError(err))
		return
	}
	sum, err := ingest.Import(r.Context(), s.store, cr, ingest.ImportOptions{
		MaxErrors: s.importMaxErrors,
		Now:       s.clock.Now,
	})
	if sum != nil {
		s.metrics.contactsImported.Add(float64(sum.Imported + sum.Updated))
	}
	if err != nil {
		// What was written before the failure stays written: say how far
		// the import got, so that a client can resume.
		err = s.importError(err)
		b := newErrorBody(err)
		if b.Code == nudge.EINTERNAL {
			s.fail(w, r, err) // logs it
			return
		}
		if b.Code == nudge.EUNAVAILABLE {
			s.logger.WarnContext(r.Context(), "import stopped: database unavailable", slog.Any("error", err))
			w.Header().Set("Retry-After", "5")
		}
		writeJSON(w, errorStatus(b.Code), importFailure{Error: b, Summary: newImportSummary(sum)})
		return
	}
	writeJSON(w, http.StatusOK, newImportSummary(sum))
}

// importSummary is the JSON form of an ingest.ImportSummary.
type importSummary struct {
	Rows            int              `json:"rows"`
	Imported        int              `json:"imported"`
	Updated         int              `json:"updated"`
	Rejected        int              `json:"rejected"`
	ConsentRecorded int              `json:"consent_recorded"`
	ConsentRejected int              `json:"consent_rejected"`
	Errors          []importRowError `json:"errors"`
}

type importRowError struct {
	Line    int    `json:"line"`
	Column  string `json:"column,omitempty"`
	Message string `json:"message"`
}

type importFailure struct {
	Error   errorBody      `json:"error"`
	Summary *importSummary `json:"summary,omitempty"`
}

func newImportSummary(s *ingest.ImportSummary) *importSummary {
	if s == nil {
		return nil
	}
	out := &importSummary{
		Rows: s.Rows, Imported: s.Imported, Updated: s.Updated, Rejected: s.Rejected,
		ConsentRecorded: s.ConsentRecorded, ConsentRejected: s.ConsentRejected,
		Errors: make([]importRowError, len(s.Errors)),
	}
	for i, e := range s.Errors {
		out.Errors[i] = importRowError{Line: e.Line, Column: e.Column, Message: e.Message}
	}
	return out
}

// importError turns a body over the cap into ETOOLARGE.
func (s *Server) importError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nudge.Errorf(nudge.ETOOLARGE, "request body is over %d bytes, the limit for /v1/contacts/import", s.maxImportBytes)
	}
	return err
}

// importParts returns the CSV stream of an import request and its mapping
// (the zero Mapping: by header).
func (s *Server) importParts(r *http.Request) (io.Reader, ingest.Mapping, error) {
	var none ingest.Mapping
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.Body, none, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, none, nudge.FieldErrorf("Content-Type", "%q is not a media type", ct)
	}
	switch mt {
	case "text/csv", "application/csv", "text/plain":
		return r.Body, none, nil
	case "multipart/form-data":
	default:
		return nil, none, nudge.FieldErrorf("Content-Type", "%q is not supported: send text/csv, or multipart/form-data with parts mapping and file", mt)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, none, nudge.Errorf(nudge.EINVALID, "reading the multipart body: %v", err)
	}
	mapping := none
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, none, nudge.FieldErrorf("file", "the multipart body has no part named file")
		}
		if err != nil {
			return nil, none, s.multipartError(err)
		}
		switch part.FormName() {
		case "mapping":
			m, err := ingest.LoadMapping(part)
			if err != nil {
				return nil, none, nudge.WithField("mapping", err)
			}
			mapping = m
		case "file":
			return part, mapping, nil
		default:
			return nil, none, nudge.FieldErrorf(part.FormName(), "unknown part; the parts are mapping (optional, first) and file")
		}
	}
}

func (s *Server) multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return nudge.Errorf(nudge.EINVALID, "reading the multipart body: %v", err)
}
