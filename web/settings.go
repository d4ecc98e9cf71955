package web

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/nudge/nudge"
)

// Provider is what the settings page says of one channel's configured
// provider. What the providers answered (last success, last error, this
// hour's calls) comes from the store, as the delivery workers of every
// node recorded it (nudge.ProviderStatus).
type Provider struct {
	Channel    string
	Name       string
	Configured bool
	Detail     string
}

// minPassword is the shortest console password (as nudge user create).
const minPassword = 12

// bcryptCost is the work factor of passwords set in the console.
const bcryptCost = 12

// pager is a page of a list held in memory: the links to the first and
// next page of the same list, keyed by the query field Key (an offset).
type pager struct {
	First, Next string
	From, Total int
}

// paginate returns the page of items that the query field key (an
// offset) asks for, and the links around it.
func paginate[T any](r *http.Request, key string, items []T) ([]T, pager) {
	off, _ := strconv.Atoi(r.URL.Query().Get(key))
	off = max(0, min(off, len(items)))
	end := min(off+pageSize, len(items))
	p := pager{From: off + 1, Total: len(items)}
	if off > 0 {
		p.First = withQuery(r, key, "")
	}
	if end < len(items) {
		p.Next = withQuery(r, key, strconv.Itoa(end))
	}
	return items[off:end], p
}

// providerActivity is a provider's recorded status with the counts of the
// current hour (zero when it last reported in an earlier one).
type providerActivity struct {
	*nudge.ProviderStatus
	Successes, Errors int64
}

type settingsPage struct {
	Keys      []*nudge.APIKey
	KeyPages  pager
	Roles     []string
	Webhooks  []*nudge.WebhookSubscription
	HookPages pager
	Events    []string
	Providers []Provider
	Activity  []providerActivity
	Hour      time.Time // the clock hour the activity's counts are of
	Users     []*nudge.User
	UserPages pager
	UserRoles []string

	// Shown once, after a create.
	NewSecret, NewWhat string
	Error              string
}

func (s *Server) settingsPage(r *http.Request) (*settingsPage, error) {
	ctx := r.Context()
	p := &settingsPage{Roles: nudge.Roles, Events: nudge.WebhookEvents, Providers: s.providers, UserRoles: nudge.UserRoles}
	keys, err := s.store.APIKeyList(ctx)
	if err != nil {
		return nil, err
	}
	slices.Reverse(keys) // newest first
	p.Keys, p.KeyPages = paginate(r, "keys", keys)
	hooks, err := s.store.WebhookList(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hooks {
		h.Secret = "" // shown once, at creation
	}
	p.Webhooks, p.HookPages = paginate(r, "hooks", hooks)
	users, err := s.users.UserList(ctx)
	if err != nil {
		return nil, err
	}
	p.Users, p.UserPages = paginate(r, "users", users)
	statuses, err := s.store.ProviderList(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	p.Hour = now.UTC().Truncate(time.Hour)
	for _, st := range statuses {
		a := providerActivity{ProviderStatus: st}
		a.Successes, a.Errors = st.HourCounts(now)
		p.Activity = append(p.Activity, a)
	}
	return p, nil
}

// showSettings renders the settings page, with a secret to show once or
// a problem with the form just sent.
func (s *Server) showSettings(w http.ResponseWriter, r *http.Request, status int, edit func(*settingsPage)) {
	p, err := s.settingsPage(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if edit != nil {
		edit(p)
	}
	s.render(w, r, status, "settings.html", "Settings", p)
}

func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) {
	s.showSettings(w, r, http.StatusOK, nil)
}

// refuse shows the settings page with a problem of the form just sent.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, msg string) {
	s.showSettings(w, r, http.StatusBadRequest, func(p *settingsPage) { p.Error = msg })
}

func (s *Server) handleAPIKeyCreate(w http.ResponseWriter, r *http.Request) {
	name, role := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	switch {
	case name == "":
		s.refuse(w, r, "API key: give it a name, to recognise it later.")
		return
	case len(name) > 200:
		s.refuse(w, r, "API key: the name is longer than 200 bytes.")
		return
	case !slices.Contains(nudge.Roles, role):
		s.refuse(w, r, fmt.Sprintf("API key: role %q is not one of %s.", role, strings.Join(nudge.Roles, ", ")))
		return
	}
	k, token := nudge.NewAPIKey(role, name, s.clock.Now())
	if err := s.store.APIKeyCreate(r.Context(), k); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "console api key created", "key_id", k.ID, "role", role, "user_id", current(r).User.ID)
	s.showSettings(w, r, http.StatusCreated, func(p *settingsPage) {
		p.NewWhat, p.NewSecret = fmt.Sprintf("The API key “%s” (%s)", name, role), token
	})
}

func (s *Server) handleAPIKeyRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.store.APIKeyRevoke(r.Context(), id, s.clock.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "console api key revoked", "key_id", id, "user_id", current(r).User.ID)
	http.Redirect(w, r, "/settings#keys", http.StatusSeeOther)
}

func (s *Server) handleWebhookCreate(w http.ResponseWriter, r *http.Request) {
	sub := &nudge.WebhookSubscription{
		ID:        "wh_" + rand.Text(),
		URL:       strings.TrimSpace(r.PostFormValue("url")),
		Events:    r.PostForm["events"],
		Secret:    "whsec_" + rand.Text() + rand.Text(),
		CreatedAt: s.clock.Now(),
	}
	if err := nudge.ValidateWebhook(sub); err != nil {
		s.refuse(w, r, "Webhook: "+nudge.ErrorMessage(err))
		return
	}
	if err := s.store.WebhookCreate(r.Context(), sub); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "console webhook created", "webhook_id", sub.ID, "user_id", current(r).User.ID)
	s.showSettings(w, r, http.StatusCreated, func(p *settingsPage) {
		p.NewWhat, p.NewSecret = "The signing secret of the webhook to "+sub.URL, sub.Secret
	})
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.store.WebhookDelete(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "console webhook deleted", "webhook_id", id, "user_id", current(r).User.ID)
	http.Redirect(w, r, "/settings#hooks", http.StatusSeeOther)
}

type webhookPage struct {
	Webhook    *nudge.WebhookSubscription
	Deliveries []*nudge.WebhookDelivery
	First      string
	Next       string
}

func (s *Server) handleWebhookLog(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sub, err := s.store.WebhookGet(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sub.Secret = ""
	p := &webhookPage{Webhook: sub}
	lp := &nudge.WebhookDeliveryListParams{SubscriptionID: sub.ID, Limit: pageSize}
	if b := r.URL.Query().Get("before"); b != "" {
		if lp.BeforeID, err = strconv.ParseInt(b, 10, 64); err != nil || lp.BeforeID < 1 {
			s.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("before: %q is not a delivery id", b))
			return
		}
		p.First = withQuery(r, "before", "")
	}
	if p.Deliveries, err = s.store.WebhookDeliveryList(ctx, lp); err != nil {
		s.fail(w, r, err)
		return
	}
	if n := len(p.Deliveries); n == pageSize {
		p.Next = withQuery(r, "before", strconv.FormatInt(p.Deliveries[n-1].ID, 10))
	}
	s.render(w, r, http.StatusOK, "webhook.html", "Webhook deliveries", p)
}

func (s *Server) handleUserCreate(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	role, password := r.PostFormValue("role"), r.PostFormValue("password")
	switch n := utf8.RuneCountInString(password); {
	case !strings.Contains(email, "@"):
		s.refuse(w, r, fmt.Sprintf("User: %q is not an email address.", email))
		return
	case !slices.Contains(nudge.UserRoles, role):
		s.refuse(w, r, fmt.Sprintf("User: role %q is not one of %s.", role, strings.Join(nudge.UserRoles, ", ")))
		return
	case n < minPassword:
		s.refuse(w, r, fmt.Sprintf("User: the password is too short: want at least %d characters.", minPassword))
		return
	case len(password) > 72:
		s.refuse(w, r, "User: the password is too long: bcrypt keeps at most 72 bytes.")
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u := &nudge.User{ID: "usr_" + strings.ToLower(rand.Text()), Email: email, Role: role, PasswordHash: hash, CreatedAt: s.clock.Now()}
	if err := s.users.UserCreate(r.Context(), u); nudge.ErrorCode(err) == nudge.ECONFLICT {
		s.refuse(w, r, fmt.Sprintf("User: %s already has an account.", email))
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "console user created", "new_user_id", u.ID, "role", role, "user_id", current(r).User.ID)
	http.Redirect(w, r, "/settings#users", http.StatusSeeOther)
}
