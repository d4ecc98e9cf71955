package api

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

// maxSuppressionBytes caps a suppression POST body.
const maxSuppressionBytes = 1 << 20

// suppressionRequest is one address to suppress in a POST body.
type suppressionRequest struct {
	Channel string `json:"channel"`
	Address string `json:"address"`
	Reason  string `json:"reason"`
	Note    string `json:"note"`
}

// SuppressionParams validates one address to suppress, with reason
// defaulting to do_not_contact: the channel is sms or email, the address a
// phone number (made E.164 by n) or an email address.
func SuppressionParams(n *ingest.ContactNormalizer, channel, address, reason, note, source string) (*nudge.SuppressionAddParams, error) {
	if reason == "" {
		reason = nudge.SuppressDoNotContact
	}
	if !slices.Contains(nudge.SuppressionReasons, reason) {
		return nil, nudge.FieldErrorf("reason", "%q is not a suppression reason; use %s", reason, strings.Join(nudge.SuppressionReasons, ", "))
	}
	addr, err := suppressionAddress(n, channel, address)
	if err != nil {
		return nil, err
	}
	if ch := reasonChannels[reason]; ch != "" && ch != channel {
		return nil, nudge.FieldErrorf("reason", "%s applies to %s addresses only", reason, ch)
	}
	if len(note) > 1000 {
		return nil, nudge.FieldErrorf("note", "is over 1000 bytes")
	}
	return &nudge.SuppressionAddParams{Channel: channel, Address: addr, Reason: reason, Source: source, Note: note}, nil
}

// reasonChannels are the reasons that only one channel can have.
var reasonChannels = map[string]string{
	nudge.SuppressHardBounce:     nudge.ChannelEmail,
	nudge.SuppressComplaint:      nudge.ChannelEmail,
	nudge.SuppressProviderOptOut: nudge.ChannelSMS,
	nudge.SuppressUnreachable:    nudge.ChannelSMS,
}

// suppressionAddress normalizes an address of a channel as contacts' are,
// so that "(415) 555-2671" suppresses "+14155552671".
func suppressionAddress(n *ingest.ContactNormalizer, channel, address string) (string, error) {
	var (
		addr string
		err  error
	)
	switch channel {
	case nudge.ChannelSMS:
		addr, err = n.Phone(address)
	case nudge.ChannelEmail:
		addr, err = n.Email(address)
	case "":
		return "", nudge.FieldErrorf("channel", "is missing; use sms or email")
	default:
		return "", nudge.FieldErrorf("channel", "%q is not a channel; use sms or email", channel)
	}
	if err != nil {
		return "", nudge.WithField("address", err)
	}
	if addr == "" {
		return "", nudge.FieldErrorf("address", "is missing; give a phone number (sms) or an email address (email)")
	}
	return addr, nil
}

// suppressionBatchResponse answers a POST of an array.
type suppressionBatchResponse struct {
	Suppressions []*nudge.Suppression `json:"suppressions"`
	Errors       []itemError          `json:"errors,omitempty"`
	Error        *errorBody           `json:"error,omitempty"`
}

// handleSuppressionAdd adds one address (a JSON object: 201 with the entry)
// or several (an array: 201 with the entries and the per-item errors if at
// least one was added; otherwise the first error's status). An address
// already suppressed for the same reason is left as it is and answered.
func (s *Server) handleSuppressionAdd(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxSuppressionBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var reqs []suppressionRequest
	trimmed := bytes.TrimSpace(body)
	single := len(trimmed) == 0 || trimmed[0] != '['
	if single {
		var one suppressionRequest
		if err := decodeStrict(body, &one); err != nil {
			s.fail(w, r, err)
			return
		}
		reqs = []suppressionRequest{one}
	} else if err := decodeStrict(body, &reqs); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(reqs) > 10000 {
		s.fail(w, r, nudge.Errorf(nudge.ETOOLARGE, "%d addresses in one request; send at most 10000", len(reqs)))
		return
	}
	errs := make([]error, len(reqs))
	var params []*nudge.SuppressionAddParams
	for i, q := range reqs {
		p, err := SuppressionParams(s.contacts, q.Channel, q.Address, q.Reason, q.Note, nudge.SourceAPI)
		if err != nil {
			errs[i] = err
			continue
		}
		params = append(params, p)
	}
	var added []*nudge.Suppression
	if len(params) > 0 {
		if added, err = s.store.SuppressionAdd(r.Context(), params, s.clock.Now()); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if single {
		if errs[0] != nil {
			s.fail(w, r, errs[0])
			return
		}
		writeJSON(w, http.StatusCreated, added[0])
		return
	}
	resp := suppressionBatchResponse{Suppressions: added}
	if resp.Suppressions == nil {
		resp.Suppressions = []*nudge.Suppression{}
	}
	for i, err := range errs {
		if err != nil {
			b := newErrorBody(nudge.WithField(fmt.Sprintf("[%d]", i), err))
			resp.Errors = append(resp.Errors, itemError{Index: i, Code: b.Code, Field: b.Field, Message: b.Message})
		}
	}
	status := http.StatusCreated
	if len(resp.Suppressions) == 0 && len(resp.Errors) > 0 {
		e := resp.Errors[0]
		resp.Error = &errorBody{Code: e.Code, Field: e.Field, Message: e.Message}
		status = errorStatus(e.Code)
	}
	writeJSON(w, status, resp)
}

// handleSuppressionRemove takes an address off the list for a channel
// (every reason): 204, or 404 if it was not on it.
func (s *Server) handleSuppressionRemove(w http.ResponseWriter, r *http.Request) {
	addr, err := suppressionAddress(s.contacts, r.PathValue("channel"), r.PathValue("address"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.SuppressionRemove(r.Context(), r.PathValue("channel"), addr); err != nil {
		if nudge.ErrorCode(err) == nudge.ENOTFOUND {
			err = nudge.Errorf(nudge.ENOTFOUND, "%s is not on the %s suppression list", addr, r.PathValue("channel"))
		}
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleSuppressionList pages the list by id: ?channel=sms|email,
// ?limit=1..1000 (default 100) and ?cursor= from the previous page's
// next_cursor, absent on the last page.
func (s *Server) handleSuppressionList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "channel", "cursor", "limit"); err != nil {
		s.fail(w, r, err)
		return
	}
	p := &nudge.SuppressionListParams{Channel: q.Get("channel"), Limit: 100}
	switch p.Channel {
	case "", nudge.ChannelSMS, nudge.ChannelEmail:
	default:
		s.fail(w, r, nudge.FieldErrorf("channel", "%q is not a channel; use sms or email", p.Channel))
		return
	}
	limit, err := parseLimit(q, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if limit > 0 {
		p.Limit = limit
	}
	if c := q.Get("cursor"); c != "" {
		if p.AfterID, err = strconv.ParseInt(c, 10, 64); err != nil || p.AfterID < 0 {
			s.fail(w, r, nudge.FieldErrorf("cursor", "%q is not a cursor; pass next_cursor of the previous page", c))
			return
		}
	}
	list, err := s.store.SuppressionList(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := struct {
		Suppressions []*nudge.Suppression `json:"suppressions"`
		NextCursor   string               `json:"next_cursor,omitempty"`
	}{Suppressions: list}
	if resp.Suppressions == nil {
		resp.Suppressions = []*nudge.Suppression{}
	}
	if len(list) == p.Limit {
		resp.NextCursor = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, resp)
}
