package api

import (
	"crypto/rand"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/link"
)

// Tracked links and one-click unsubscribe carry no API key: the person
// holding the message follows them. The code or token in the path is the
// only credential (link codes 65 bits, unsubscribe tokens 130 bits, both
// from crypto/rand), so it is never logged. Answers are plain text or a
// small HTML page, never JSON: a browser shows them.

// Click events. A click by a person is "sms.clicked" or "email.clicked",
// which journeys can wait for and reports count; a fetch by a link
// previewer or scanner (clickBots, or any HEAD request) is recorded as
// "sms.link_previewed" or "email.link_previewed" with bot: true, so that it
// neither counts as a click nor wakes a journey waiting for one.
const (
	clickedSuffix   = ".clicked"
	previewedSuffix = ".link_previewed"
)

// clickBots are case-insensitive substrings of the User-Agent of link
// previewers, crawlers and scripted clients. Apple's iMessage previews
// announce themselves as "facebookexternalhit … Twitterbot", so they are
// covered by those. The list is deliberately explicit: a bare "bot" would
// also match phones such as the Cubot's Android browser.
var clickBots = []string{
	"slackbot", "facebookexternalhit", "facebot", "twitterbot", "whatsapp",
	"telegrambot", "discordbot", "linkedinbot", "skypeuripreview", "applebot",
	"googlebot", "google-pagerenderer", "bingbot", "bingpreview", "pinterestbot",
	"redditbot", "embedly", "iframely", "headlesschrome",
	"curl/", "wget/", "python-requests", "go-http-client",
}

// isBot reports whether a request looks like a link preview rather than a
// person: a HEAD request, no User-Agent, or one of clickBots.
func isBot(r *http.Request) bool {
	if r.Method == http.MethodHead {
		return true
	}
	ua := strings.ToLower(r.UserAgent())
	if ua == "" {
		return true
	}
	for _, b := range clickBots {
		if strings.Contains(ua, b) {
			return true
		}
	}
	return false
}

func (s *Server) linkRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /c/{code}", s.handleClick) // GET patterns answer HEAD too
	mux.HandleFunc("GET /u/{token}", s.handleUnsubscribePage)
	mux.HandleFunc("POST /u/{token}", s.handleUnsubscribe)
}

// plain writes a short text/plain answer.
func plain(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}

// linkFailed answers a store failure without logging the path (it holds the
// code or token).
func (s *Server) linkFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	if nudge.ErrorCode(err) == nudge.EUNAVAILABLE {
		s.logger.WarnContext(r.Context(), op, slog.Any("error", err))
		w.Header().Set("Retry-After", "5")
		plain(w, http.StatusServiceUnavailable, "Temporarily unavailable; try again in a moment.")
		return
	}
	s.logger.ErrorContext(r.Context(), op, slog.Any("error", err))
	plain(w, http.StatusInternalServerError, "Something went wrong; try again later.")
}

// lookupLink returns the link of a code of the wanted kind (unsubscribe or
// not), or writes 404 and returns nil.
func (s *Server) lookupLink(w http.ResponseWriter, r *http.Request, code string, unsubscribe bool) *nudge.Link {
	notFound := func() {
		plain(w, http.StatusNotFound, "This link is not valid.")
	}
	if !link.ValidCode(code) {
		notFound()
		return nil
	}
	l, err := s.store.LinkGet(r.Context(), code)
	switch {
	case nudge.ErrorCode(err) == nudge.ENOTFOUND:
		notFound()
		return nil
	case err != nil:
		s.linkFailed(w, r, "link lookup failed", err)
		return nil
	case (l.Channel == nudge.LinkUnsubscribe) != unsubscribe:
		notFound()
		return nil
	}
	return l
}

// handleClick serves GET and HEAD /c/{code}: a 302 to the original URL,
// after recording the click. Every click is its own event (a double click
// is two); a click whose recording fails still redirects.
func (s *Server) handleClick(w http.ResponseWriter, r *http.Request) {
	l := s.lookupLink(w, r, r.PathValue("code"), false)
	if l == nil {
		return
	}
	s.recordClick(r, l)
	http.Redirect(w, r, l.URL, http.StatusFound)
}

func (s *Server) recordClick(r *http.Request, l *nudge.Link) {
	ctx := r.Context()
	// An erased contact's link still redirects, but a click must not bring
	// the contact back (EventIngest creates the contacts it names).
	if _, err := s.store.ContactGet(ctx, l.ContactID); err != nil {
		if nudge.ErrorCode(err) != nudge.ENOTFOUND {
			s.logger.WarnContext(ctx, "click not recorded", slog.String("contact_id", l.ContactID), slog.Any("error", err))
		}
		return
	}
	bot := isBot(r)
	name := l.Channel + clickedSuffix
	props := map[string]any{
		"message_id": l.MessageID, "step_id": l.StepID, "journey_id": l.JourneyID,
		"url": l.URL, "user_agent": r.UserAgent(),
	}
	if bot {
		name = l.Channel + previewedSuffix
		props["bot"] = true
		props["method"] = r.Method
	}
	now := s.clock.Now().UTC()
	ev := &nudge.Event{MessageID: "click-" + rand.Text(), Type: nudge.EventTrack, ContactID: l.ContactID,
		Name: name, Properties: props, Timestamp: now, ReceivedAt: now}
	if _, err := s.store.EventIngest(ctx, []nudge.IngestItem{{Event: ev}}, now); err != nil {
		s.logger.WarnContext(ctx, "click not recorded", slog.String("contact_id", l.ContactID), slog.Any("error", err))
	}
}

var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Unsubscribe</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}button{font:inherit;padding:.5rem 1rem}</style>
</head><body>
{{if .Done}}<h1>You are unsubscribed</h1><p>You will no longer receive marketing email from us at this address.</p>
{{else}}<h1>Unsubscribe</h1><p>Stop marketing email to this address?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>
{{end}}</body></html>
`))

func writeUnsubscribePage(w http.ResponseWriter, done bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	_ = unsubscribePage.Execute(w, struct{ Done bool }{done})
}

// handleUnsubscribePage serves GET /u/{token}: a page with a button that
// POSTs. A GET never unsubscribes: mail scanners and previews follow links.
func (s *Server) handleUnsubscribePage(w http.ResponseWriter, r *http.Request) {
	if s.lookupLink(w, r, r.PathValue("token"), true) == nil {
		return
	}
	writeUnsubscribePage(w, false)
}

// maxUnsubscribeBytes caps the one-click POST body ("List-Unsubscribe=One-Click").
const maxUnsubscribeBytes = 4 << 10

// handleUnsubscribe serves POST /u/{token}, the one-click unsubscribe of
// RFC 8058 (and the page's button): the contact's email address opts out
// of marketing (source form) and the answer is 200. A repeated POST
// records nothing new. A token sent to an address the contact no longer
// has, or of an erased contact, answers 200 too and records nothing: that
// address gets no more mail from this contact either way, and its click
// must not opt out the contact's new address.
func (s *Server) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	l := s.lookupLink(w, r, token, true)
	if l == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUnsubscribeBytes)
	if err := r.ParseMultipartForm(maxUnsubscribeBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		plain(w, http.StatusBadRequest, "The request body is not a form.")
		return
	}
	if r.PostFormValue("List-Unsubscribe") != "One-Click" {
		plain(w, http.StatusBadRequest, "Expected the form field List-Unsubscribe=One-Click (RFC 8058).")
		return
	}
	ctx := r.Context()
	if !l.AddressCurrent {
		s.logger.InfoContext(ctx, "one-click unsubscribe for an address the contact no longer has: nothing recorded",
			slog.String("contact_id", l.ContactID), slog.String("message_id", l.MessageID))
		writeUnsubscribePage(w, true)
		return
	}
	states, err := s.store.ConsentList(ctx, l.ContactID)
	if nudge.ErrorCode(err) == nudge.ENOTFOUND {
		writeUnsubscribePage(w, true)
		return
	} else if err != nil {
		s.linkFailed(w, r, "one-click unsubscribe: consent", err)
		return
	}
	for _, st := range states {
		if st.Channel == nudge.ChannelEmail && st.Purpose == nudge.PurposeMarketing && st.Status == nudge.ConsentOptedOut {
			writeUnsubscribePage(w, true)
			return
		}
	}
	res, err := s.store.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{
		ContactID: l.ContactID, Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing,
		Status: nudge.ConsentOptedOut, Source: nudge.SourceForm,
		Evidence: nudge.ConsentEvidence{FormURL: s.twilio.signedURL(r), Text: "one-click unsubscribe (RFC 8058)"},
	}}, s.clock.Now())
	if err == nil && res[0].Err != nil && nudge.ErrorCode(res[0].Err) != nudge.ENOTFOUND {
		err = res[0].Err
	}
	if err != nil {
		s.linkFailed(w, r, "one-click unsubscribe: record opt-out", err)
		return
	}
	s.logger.InfoContext(ctx, "one-click unsubscribe recorded",
		slog.String("contact_id", l.ContactID), slog.String("message_id", l.MessageID))
	writeUnsubscribePage(w, true)
}
