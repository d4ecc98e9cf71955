package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
)

// maxPolicyBytes caps a policy file sent to validate or PUT.
const maxPolicyBytes = 256 << 10

// DefaultPolicyYAML is the built-in default policy (policy.Default) written
// as a policy file: what GET /v1/policy and `nudge policy show` answer until
// a policy is published. policy.Parse of it gives policy.Default (a test
// keeps it so).
const DefaultPolicyYAML = `# The built-in default policy: no policy was ever published.
# Publish your own with PUT /v1/policy or "nudge policy publish FILE";
# what your file leaves out keeps these values.
timezone: America/New_York     # when neither the contact nor the phone number gives a zone
consent:
  sms: {marketing: opted_in, transactional: not_opted_out}
  email: {marketing: not_opted_out, transactional: not_opted_out}
sms:
  purposes: [reminder, decision_point, time_sensitive, onboarding, transactional]
  awareness_stages: [subscriber] # no marketing SMS at these lifecycle stages
  engagement: false              # no engagement required before a marketing SMS
quiet_hours:
  sms:
    allow: "08:00-21:00"         # the contact's local time (TCPA)
    transactional: true          # transactional texts keep quiet hours too
    regions:                     # these replace allow where the number places the contact
      US-FL: {allow: "08:00-20:00"}
      US-OK: {allow: "08:00-20:00"}
      US-MD: {allow: "08:00-20:00"}
      US-AL: {allow: "08:00-20:00", days: [mon, tue, wed, thu, fri, sat]}
      US-LA: {allow: "08:00-20:00", days: [mon, tue, wed, thu, fri, sat]}
      US-MS: {allow: "08:00-21:00", days: [mon, tue, wed, thu, fri, sat]}
      US-MA: {allow: "08:00-20:00"}
      US-KY: {allow: "10:00-21:00"}
      US-MI: {allow: "09:00-21:00"}
      US-MN: {allow: "09:00-21:00"}
      US-NM: {allow: "09:00-21:00"}
      US-NV: {allow: "09:00-20:00"}
      US-RI: {allow: "09:00-18:00", days: [mon, tue, wed, thu, fri]}
      FR: {allow: "08:00-22:00", days: [mon, tue, wed, thu, fri, sat]}
  email: none                    # email may go at any hour
jitter: 15m                      # deferred sends spread over 15 minutes
caps:
  - {channel: sms, limit: 1, per: 24h}
  - {channel: sms, limit: 3, per: 7d}
  - {channel: email, limit: 2, per: 24h}
  - {channel: sms, limit: 3, per: 24h, region: US-FL}
  - {channel: sms, limit: 3, per: 24h, region: US-OK}
  - {channel: sms, limit: 3, per: 24h, region: US-MD}
transactional: {bypass_caps: false, count_when_bypassing: false}
on_cap: skip                     # a capped step skips (or: defer)
# keywords: the shipped STOP, START and HELP keywords and replies.
`

// problemsOf turns a policy ValidationError into the API's problems; ok is
// false for any other error.
func problemsOf(err error) ([]problemJSON, bool) {
	var ve *policy.ValidationError
	if !errors.As(err, &ve) {
		return nil, false
	}
	ps := make([]problemJSON, len(ve.Problems))
	for i, p := range ve.Problems {
		ps[i] = problemJSON{Line: p.Line, Col: p.Col, Message: p.Message}
	}
	return ps, true
}

// parsePolicy reads a YAML body and parses it. A file with problems gives
// problems and no error; err is for a body that could not be read.
func (s *Server) parsePolicy(w http.ResponseWriter, r *http.Request) ([]byte, []problemJSON, error) {
	body, err := readBody(w, r, maxPolicyBytes)
	if err != nil {
		return nil, nil, err
	}
	if len(body) == 0 {
		return nil, nil, nudge.Errorf(nudge.EINVALID, "the request body is empty; send the policy's YAML")
	}
	_, err = policy.Parse("policy.yaml", body)
	if ps, ok := problemsOf(err); ok {
		return nil, ps, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return body, []problemJSON{}, nil
}

// handlePolicyValidate answers whether a policy file is valid, with every
// problem and its line and column. It stores nothing.
func (s *Server) handlePolicyValidate(w http.ResponseWriter, r *http.Request) {
	src, problems, err := s.parsePolicy(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, validationResponse{Valid: src != nil, Problems: problems})
}

// policyPublishResponse answers PUT /v1/policy.
type policyPublishResponse struct {
	Version *nudge.PolicyVersion `json:"version"`
	Created bool                 `json:"created"` // false: the file equals the latest version
}

// handlePolicyPut validates a policy file and publishes it as the next
// version: 201 when a version was made, 200 when the file equals the latest
// version, 400 with every problem when it is invalid (then nothing is stored).
func (s *Server) handlePolicyPut(w http.ResponseWriter, r *http.Request) {
	src, problems, err := s.parsePolicy(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if src == nil {
		refusePublish(w, "policy", problems)
		return
	}
	v, created, err := s.store.PolicyPublish(r.Context(), src, "", s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, policyPublishResponse{Version: v, Created: created})
}

// PolicyJSON is a policy version as GET /v1/policy?format=json answers it.
// Default is true (and Version 0) when no policy was ever published: Source
// is then DefaultPolicyYAML.
type PolicyJSON struct {
	Version     int64     `json:"version"`
	Hash        string    `json:"hash"`
	PublishedAt time.Time `json:"published_at,omitzero"`
	Default     bool      `json:"default"`
	Source      string    `json:"source"`
}

// CurrentPolicy returns a stored version (0: the latest) as PolicyJSON;
// when version is 0 and none was published, the built-in default.
func CurrentPolicy(ctx context.Context, ps nudge.PolicyStore, version int64) (*PolicyJSON, error) {
	v, err := ps.PolicyGet(ctx, version)
	switch {
	case err == nil:
		return &PolicyJSON{Version: v.Version, Hash: v.Hash, PublishedAt: v.PublishedAt, Source: string(v.Source)}, nil
	case version == 0 && nudge.ErrorCode(err) == nudge.ENOTFOUND:
		sum := sha256.Sum256([]byte(DefaultPolicyYAML))
		return &PolicyJSON{Hash: hex.EncodeToString(sum[:]), Default: true, Source: DefaultPolicyYAML}, nil
	case nudge.ErrorCode(err) == nudge.ENOTFOUND:
		return nil, nudge.Errorf(nudge.ENOTFOUND, "policy version %d does not exist", version)
	}
	return nil, err
}

// handlePolicyGet answers the latest policy (or ?version=N): the YAML file
// itself by default, with its version and hash in the Nudge-Policy-Version
// and Nudge-Policy-Hash headers (and Nudge-Policy-Default: true when it is
// the built-in default), or JSON with ?format=json.
func (s *Server) handlePolicyGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "format", "version"); err != nil {
		s.fail(w, r, err)
		return
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "yaml" {
		s.fail(w, r, nudge.FieldErrorf("format", "%q is not a format; use json or yaml", format))
		return
	}
	var version int64
	if v := q.Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			s.fail(w, r, nudge.FieldErrorf("version", "%q is not a version number; versions are 1, 2, …", v))
			return
		}
		version = n
	}
	p, err := CurrentPolicy(r.Context(), s.store, version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if format == "json" {
		writeJSON(w, http.StatusOK, p)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/yaml; charset=utf-8")
	h.Set("Nudge-Policy-Version", strconv.FormatInt(p.Version, 10))
	h.Set("Nudge-Policy-Hash", p.Hash)
	h.Set("ETag", `"`+p.Hash+`"`)
	if p.Default {
		h.Set("Nudge-Policy-Default", "true")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(p.Source))
}

// handlePolicyVersions lists the published versions, oldest first.
func (s *Server) handlePolicyVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := s.store.PolicyVersionList(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if vs == nil {
		vs = []*nudge.PolicyVersion{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

// policyRoutes registers the policy and suppression routes. Validation
// stores nothing, so read keys may use it.
func (s *Server) policyRoutes(read, admin func(string, http.HandlerFunc)) {
	read("GET /v1/policy", s.handlePolicyGet)
	admin("PUT /v1/policy", s.handlePolicyPut)
	read("POST /v1/policy/validate", s.handlePolicyValidate)
	read("GET /v1/policy/versions", s.handlePolicyVersions)
	read("GET /v1/suppressions", s.handleSuppressionList)
	admin("POST /v1/suppressions", s.handleSuppressionAdd)
	admin("DELETE /v1/suppressions/{channel}/{address}", s.handleSuppressionRemove)
	read("GET /v1/contacts/{id}/timeline", s.handleTimeline)
}
