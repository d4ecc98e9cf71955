package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

// maxContactBytes caps a PUT or PATCH body.
const maxContactBytes = 64 << 10

// contactBody reads a PUT or PATCH body: a JSON object of well-known fields,
// an "attributes" object, and (as in identify traits) any other key as an
// attribute. created_at and updated_at are read-only and ignored, so that a
// GET's output can be sent back; an id must match the path.
func (s *Server) contactBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	body, err := readBody(w, r, maxContactBytes)
	if err != nil {
		return nil, err
	}
	fields, err := ingest.DecodeObject(body)
	if err != nil {
		return nil, err
	}
	delete(fields, "created_at")
	delete(fields, "updated_at")
	return fields, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (s *Server) handleContactGet(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.ContactGet(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// handleContactPut replaces a contact wholly, creating it if new (201).
func (s *Server) handleContactPut(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	fields, err := s.contactBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.contacts.Contact(id, fields)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stored, created, err := s.store.ContactPut(r.Context(), c, s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, stored)
}

// handleContactPatch merges a body into an existing contact; a null
// attribute deletes it, a null or "" well-known field clears it.
func (s *Server) handleContactPatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	fields, err := s.contactBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.contacts.Patch(id, fields)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// PATCH does not create: ContactMerge would, so look first.
	if _, err := s.store.ContactGet(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.store.ContactMerge(r.Context(), []*nudge.ContactPatch{p}, s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res[0].Contact)
}

func (s *Server) handleContactErase(w http.ResponseWriter, r *http.Request) {
	if err := s.store.ContactErase(r.Context(), r.PathValue("id"), s.clock.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseLimit reads the limit query parameter: 1..max, default 0 (the store's).
func parseLimit(q url.Values, max int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, nudge.FieldErrorf("limit", "%q is not a number from 1 to %d", v, max)
	}
	return n, nil
}

// checkParams rejects query parameters a route does not know, so that a
// misspelt filter is an error, not a silently unfiltered list.
func checkParams(q url.Values, known ...string) error {
	for k := range q {
		if !contains(known, k) {
			return nudge.FieldErrorf(k, "unknown query parameter; the known ones are %s", strings.Join(known, ", "))
		}
	}
	return nil
}

func (s *Server) handleContactList(w http.ResponseWriter, r *http.Request) {
	p, err := s.contactListParams(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.store.ContactList(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Contacts == nil {
		page.Contacts = []*nudge.Contact{}
	}
	writeJSON(w, http.StatusOK, page)
}

// contactListParams reads the list filters. email and phone are normalized
// as stored ones are, so "(415) 555-0100" finds "+14155550100".
func (s *Server) contactListParams(q url.Values) (*nudge.ContactListParams, error) {
	known := []string{"email", "phone", "lifecycle_stage", "journey_stage", "is_customer", "updated_after", "cursor", "limit"}
	for k, vs := range q {
		if !contains(known, k) && !strings.HasPrefix(k, "attributes.") {
			return nil, nudge.FieldErrorf(k, "unknown query parameter; the known ones are %s and attributes.<name>", strings.Join(known, ", "))
		}
		if len(vs) > 1 {
			return nil, nudge.FieldErrorf(k, "given %d times; give it once", len(vs))
		}
	}
	p := &nudge.ContactListParams{
		Email:          q.Get("email"),
		Phone:          q.Get("phone"),
		LifecycleStage: q.Get("lifecycle_stage"),
		JourneyStage:   q.Get("journey_stage"),
		Cursor:         q.Get("cursor"),
	}
	var err error
	if p.Limit, err = parseLimit(q, 1000); err != nil {
		return nil, err
	}
	if p.Email, err = s.contacts.Email(p.Email); err != nil {
		return nil, nudge.WithField("email", err)
	}
	if p.Phone, err = s.contacts.Phone(p.Phone); err != nil {
		return nil, nudge.WithField("phone", err)
	}
	if v := q.Get("is_customer"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, nudge.FieldErrorf("is_customer", "%q is not true or false", v)
		}
		p.IsCustomer = &b
	}
	if v := q.Get("updated_after"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, nudge.FieldErrorf("updated_after", "%q is not an RFC 3339 time (2026-03-02T09:00:00Z)", v)
		}
		p.UpdatedAfter = t.UTC()
	}
	for k, vs := range q {
		name, ok := strings.CutPrefix(k, "attributes.")
		if !ok {
			continue
		}
		if name == "" {
			return nil, nudge.FieldErrorf(k, "an attribute name is required after attributes.")
		}
		if p.Attributes == nil {
			p.Attributes = map[string]string{}
		}
		p.Attributes[name] = vs[0]
	}
	return p, nil
}

func (s *Server) handleEventList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := r.PathValue("id")
	if err := checkParams(q, "name", "cursor", "limit"); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := parseLimit(q, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.store.ContactGet(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.store.EventList(r.Context(), &nudge.EventListParams{
		ContactID: id, Name: q.Get("name"), Cursor: q.Get("cursor"), Limit: limit,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Events == nil {
		page.Events = []*nudge.Event{}
	}
	writeJSON(w, http.StatusOK, page)
}
