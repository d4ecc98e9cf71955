package api

import (
	"cmp"
	"crypto/rand"
	"net/http"
	"strconv"

	"github.com/nudge/nudge"
)

// webhookRoutes are the CRM write-back subscriptions: admin only, since a
// subscription sends contact data out of Nudge.
func (s *Server) webhookRoutes(admin func(string, http.HandlerFunc)) {
	admin("POST /v1/webhooks", s.handleWebhookCreate)
	admin("GET /v1/webhooks", s.handleWebhookList)
	admin("DELETE /v1/webhooks/{id}", s.handleWebhookDelete)
	admin("GET /v1/webhooks/{id}/deliveries", s.handleWebhookDeliveries)
}

// minWebhookSecret is the shortest secret a caller may choose.
const minWebhookSecret = 16

// handleWebhookCreate creates a subscription. The secret, chosen by the
// caller or made here, is in this answer and no other.
func (s *Server) handleWebhookCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, 16<<10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Secret string   `json:"secret"`
	}
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.checkURL != nil {
		if err := s.checkURL(req.URL); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if req.Secret != "" && len(req.Secret) < minWebhookSecret {
		s.fail(w, r, nudge.FieldErrorf("secret", "shorter than %d characters; leave it out to have one made", minWebhookSecret))
		return
	}
	sub := &nudge.WebhookSubscription{
		ID:        "wh_" + rand.Text(),
		URL:       req.URL,
		Events:    req.Events,
		Secret:    req.Secret,
		CreatedAt: s.clock.Now(),
	}
	if sub.Secret == "" {
		sub.Secret = "whsec_" + rand.Text() + rand.Text()
	}
	if err := s.store.WebhookCreate(r.Context(), sub); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sub)
}

func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request) {
	subs, err := s.store.WebhookList(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if subs == nil {
		subs = []*nudge.WebhookSubscription{}
	}
	for _, sub := range subs {
		sub.Secret = ""
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": subs})
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.store.WebhookDelete(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleWebhookDeliveries pages a subscription's delivery log, newest
// first; "next" is the before_id of the following page.
func (s *Server) handleWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "limit", "before_id"); err != nil {
		s.fail(w, r, err)
		return
	}
	p := &nudge.WebhookDeliveryListParams{SubscriptionID: r.PathValue("id")}
	var err error
	if p.Limit, err = parseLimit(q, 1000); err != nil {
		s.fail(w, r, err)
		return
	}
	if v := q.Get("before_id"); v != "" {
		if p.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil || p.BeforeID < 1 {
			s.fail(w, r, nudge.FieldErrorf("before_id", "%q is not a positive number", v))
			return
		}
	}
	if _, err := s.store.WebhookGet(r.Context(), p.SubscriptionID); err != nil {
		s.fail(w, r, err)
		return
	}
	ds, err := s.store.WebhookDeliveryList(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := map[string]any{"deliveries": ds}
	if ds == nil {
		out["deliveries"] = []*nudge.WebhookDelivery{}
	}
	if n := len(ds); n > 0 && n == cmp.Or(p.Limit, 100) { // a full page: there may be more
		out["next"] = strconv.FormatInt(ds[n-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}
