package api

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/policy"
	"github.com/nudge/nudge/template"
)

// Config configures a Server. Store is required; the rest has defaults.
type Config struct {
	Store  nudge.Store
	Clock  nudge.Clock  // default nudge.SystemClock
	Logger *slog.Logger // default slog.Default()
	// Contacts validates the well-known contact fields of PUT and PATCH
	// bodies and of imports (default: Parser's, else one without a default
	// phone region).
	Contacts *ingest.ContactNormalizer
	// Parser parses Segment calls (default: one using Contacts).
	Parser *ingest.Parser
	// Registry receives the server's metrics and is served on /metrics
	// (default: a new registry).
	Registry *prometheus.Registry
	Version  string

	// KeyCacheTTL is how long a verified API key is trusted without reading
	// the database again; a key revoked on another node (or with the CLI)
	// keeps working that long. Default 30 s; negative disables the cache.
	KeyCacheTTL time.Duration
	// MaxImportBytes caps a CSV import's body (default 4 GiB).
	MaxImportBytes int64
	// ImportMaxErrors is how many row errors an import reports before it
	// stops (default 1000).
	ImportMaxErrors int
	// ReadyTimeout bounds the database ping of /readyz (default 2 s).
	ReadyTimeout time.Duration
	// IngestRate caps this node's ingest requests (identify, track, page,
	// screen, batch) a second, up to IngestBurst at once (default: one
	// second's worth); beyond it they get 429 with Retry-After. 0: no cap.
	IngestRate  float64
	IngestBurst int

	// TwilioAuthToken authenticates Twilio's webhooks (X-Twilio-Signature);
	// empty, /v1/webhooks/twilio/* answer 404.
	TwilioAuthToken string
	// PublicURL is the base URL Twilio calls (https://nudge.example.com),
	// from which the signed URL is rebuilt; default: the request's Host and
	// X-Forwarded-Proto.
	PublicURL string
	// Keywords are the inbound SMS keywords and replies (default
	// policy.DefaultKeywords()).
	Keywords policy.KeywordConfig
	// SendSMS sends a keyword's reply (confirmation, help text); nil, the
	// reply is returned as TwiML for Twilio to send.
	SendSMS func(ctx context.Context, to, body string) error
	// KannelKey authenticates Kannel's dlr-url and get-url calls, which
	// carry it as key=… in the query (see kannel.go: loopback or private
	// links only); at least 22 random characters. Empty,
	// /v1/webhooks/kannel/* answer 404.
	KannelKey string
	// SendGridPublicKey verifies SendGrid's signed Event Webhook: the
	// verification key SendGrid shows (base64 of an ECDSA P-256 public
	// key). Empty, /v1/webhooks/sendgrid answers 404.
	SendGridPublicKey string
	// SESTopicARNs are the SNS topics whose signed SES notifications
	// POST /v1/webhooks/ses accepts (ses.go); empty, it answers 404.
	// SNSClient fetches SNS certificates and subscribe URLs (default:
	// a 10 s client).
	SESTopicARNs []string
	SNSClient    *http.Client
	// Templates are the message templates POST /v1/templates/{name}/preview
	// renders (the delivery worker's folder); nil: none are loaded.
	Templates *template.Set
	// SMSLimits configure the SMS lint of a preview (segments, price).
	SMSLimits template.SMSLimits
	// CheckWebhookURL refuses a subscription URL that webhooks may not
	// call (channel/webhook.CheckURL with the delivery's allowances); nil,
	// only the URL's form is checked.
	CheckWebhookURL func(url string) error
}

// Server is Nudge's JSON API.
type Server struct {
	store    nudge.Store
	clock    nudge.Clock
	logger   *slog.Logger
	contacts *ingest.ContactNormalizer
	parser   *ingest.Parser
	registry *prometheus.Registry
	version  string

	keys            *keyCache
	ingestLimit     *limiter
	maxImportBytes  int64
	importMaxErrors int
	readyTimeout    time.Duration

	metrics *metrics
	twilio  *twilioHooks
	// kannelKey authenticates /v1/webhooks/kannel/*.
	kannelKey string
	// sendgridKey verifies /v1/webhooks/sendgrid; nil: not configured.
	sendgridKey *ecdsa.PublicKey
	ses         *sesHooks // nil: not configured
	templates   *template.Set
	smsLimits   template.SMSLimits
	checkURL    func(string) error
	handler     http.Handler
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: Config.Store is required")
	}
	s := &Server{
		store:           cfg.Store,
		clock:           cmp.Or[nudge.Clock](cfg.Clock, nudge.SystemClock{}),
		logger:          cmp.Or(cfg.Logger, slog.Default()),
		registry:        cmp.Or(cfg.Registry, prometheus.NewRegistry()),
		version:         cmp.Or(cfg.Version, "dev"),
		maxImportBytes:  cmp.Or(cfg.MaxImportBytes, 4<<30),
		importMaxErrors: cmp.Or(cfg.ImportMaxErrors, 1000),
		readyTimeout:    cmp.Or(cfg.ReadyTimeout, 2*time.Second),
	}
	// One normalizer for identify traits, PUT/PATCH bodies and imports, so
	// that a phone number means the same everywhere.
	var parserContacts *ingest.ContactNormalizer
	if cfg.Parser != nil {
		parserContacts = cfg.Parser.Contacts
	}
	s.contacts = cmp.Or(cfg.Contacts, parserContacts, &ingest.ContactNormalizer{})
	s.parser = cmp.Or(cfg.Parser, &ingest.Parser{Contacts: s.contacts})
	s.keys = newKeyCache(cmp.Or(cfg.KeyCacheTTL, 30*time.Second))
	var err error
	if s.ingestLimit, err = newLimiter(s.clock, cfg.IngestRate, cfg.IngestBurst); err != nil {
		return nil, err
	}
	if s.maxImportBytes < 0 || s.importMaxErrors < 0 || s.readyTimeout < 0 {
		return nil, errors.New("api: MaxImportBytes, ImportMaxErrors and ReadyTimeout cannot be negative")
	}
	m, err := newMetrics(s.registry)
	if err != nil {
		return nil, fmt.Errorf("api: metrics: %w", err)
	}
	s.metrics = m
	if s.twilio, err = newTwilioHooks(cfg); err != nil {
		return nil, err
	}
	if err := checkKannelKey(cfg.KannelKey); err != nil {
		return nil, err
	}
	s.kannelKey = cfg.KannelKey
	if s.sendgridKey, err = parseSendGridKey(cfg.SendGridPublicKey); err != nil {
		return nil, err
	}
	s.ses = newSESHooks(cfg.SESTopicARNs, cfg.SNSClient)
	s.templates, s.smsLimits = cfg.Templates, cfg.SMSLimits
	s.checkURL = cfg.CheckWebhookURL
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelError),
	}))

	ingestRole := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, s.requireRole(nudge.RoleIngest, s.limitIngest(h)))
	}
	ingestRole("POST /v1/identify", s.handleCall(nudge.EventIdentify))
	ingestRole("POST /v1/track", s.handleCall(nudge.EventTrack))
	ingestRole("POST /v1/page", s.handleCall("page"))
	ingestRole("POST /v1/screen", s.handleCall("screen"))
	ingestRole("POST /v1/batch", s.handleBatch)

	read := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, s.requireRole(nudge.RoleRead, h))
	}
	admin := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, s.requireRole(nudge.RoleAdmin, h))
	}
	read("GET /v1/contacts", s.handleContactList)
	read("GET /v1/contacts/{id}", s.handleContactGet)
	admin("PUT /v1/contacts/{id}", s.handleContactPut)
	admin("PATCH /v1/contacts/{id}", s.handleContactPatch)
	admin("DELETE /v1/contacts/{id}", s.handleContactErase)
	read("GET /v1/contacts/{id}/events", s.handleEventList)
	read("GET /v1/contacts/{id}/consent", s.handleConsentGet)
	admin("POST /v1/contacts/{id}/consent", s.handleConsentRecord)
	read("GET /v1/consent/ledger.csv", s.handleLedgerCSV)
	admin("POST /v1/contacts/import", s.handleImport)
	admin("POST /v1/apikeys", s.handleAPIKeyCreate)
	admin("GET /v1/apikeys", s.handleAPIKeyList)
	admin("DELETE /v1/apikeys/{id}", s.handleAPIKeyRevoke)
	s.webhookRoutes(admin)
	s.journeyRoutes(read, admin)
	s.pauseRoutes(read, admin)
	s.policyRoutes(read, admin)
	s.reportRoutes(read)
	read("POST /v1/templates/{name}/preview", s.handleTemplatePreview)
	s.twilioRoutes(mux) // no API key: signed by Twilio
	s.linkRoutes(mux)   // no API key: the code or token is the credential
	s.kannelRoutes(mux) // no API key: Config.KannelKey in the query
	s.emailEventRoutes(mux, ingestRole)

	// Everything else: under /v1 only with a key, so that no route there
	// answers without one; 405 if the path exists with another method.
	mux.HandleFunc("/v1/", s.requireRole("", s.notFound(mux)))
	mux.HandleFunc("/", s.notFound(mux))

	return s.metrics.instrument(s.recoverPanic(secureHeaders(mux)))
}

// notFound answers requests no route matched, in JSON.
func (s *Server) notFound(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if m == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != "" && p != "/" && p != "/v1/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			for _, m := range allow {
				w.Header().Add("Allow", m)
			}
			writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: errorBody{
				Code: "method_not_allowed", Message: fmt.Sprintf("%s %s is not supported; use %s", r.Method, r.URL.Path, strings.Join(allow, ", ")),
			}})
			return
		}
		s.fail(w, r, nudge.Errorf(nudge.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
	}
}

// secureHeaders sets the headers every response carries.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// recoverPanic turns a handler's panic into a logged 500.
func (s *Server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // a deliberate abort: let net/http cut the connection
			}
			s.logger.ErrorContext(r.Context(), "handler panicked",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			// If the handler had written already the status is sent; the
			// client gets a truncated body, which is the best left to do.
			writeJSON(w, http.StatusInternalServerError, errorResponse{Error: errorBody{
				Code: nudge.EINTERNAL, Message: "internal error"}})
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logger.WarnContext(r.Context(), "readiness check failed", slog.Any("error", err))
		msg := "the database does not answer"
		var ne *nudge.Error
		if errors.As(err, &ne) && ne.Code == nudge.EUNAVAILABLE && ne.Message != "database unavailable" {
			msg = ne.Message // e.g. the database answers but is read-only
		}
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: errorBody{
			Code: nudge.EUNAVAILABLE, Message: msg}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
