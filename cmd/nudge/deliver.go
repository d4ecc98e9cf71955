package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/kannel"
	"github.com/nudge/nudge/channel/logsink"
	"github.com/nudge/nudge/channel/smtp"
	"github.com/nudge/nudge/channel/twilio"
	"github.com/nudge/nudge/channel/webhook"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/link"
	"github.com/nudge/nudge/policy"
	"github.com/nudge/nudge/template"
)

// DeliveryConfig chooses the providers. Secrets come from the environment
// only, never from flags, so they do not show in a process list.
type DeliveryConfig struct {
	Templates string // NUDGE_TEMPLATES: folder of *.email.liquid and *.sms.liquid
	PublicURL string // NUDGE_PUBLIC_URL: how providers reach this server (status callbacks)
	EmailFrom string // NUDGE_EMAIL_FROM
	SMTPURL   string // NUDGE_SMTP_URL: smtp://user:pass@host:587?tls=starttls|implicit|opportunistic|none; empty: log only
	SMSFrom   string // NUDGE_SMS_FROM: sending number or messaging service SID (MG…)

	TwilioAccountSID string // NUDGE_TWILIO_ACCOUNT_SID; empty: SMS are logged, not sent
	TwilioAuthToken  string // NUDGE_TWILIO_AUTH_TOKEN
	TwilioBaseURL    string // NUDGE_TWILIO_BASE_URL: for a Twilio-compatible endpoint

	// With PublicURL set, links in SMS and email HTML become tracked links
	// (/c/{code}) and marketing email gets RFC 8058 one-click unsubscribe
	// headers (/u/{token}).
	TrackEmailText    bool   // NUDGE_TRACK_EMAIL_TEXT=1: also rewrite the URLs of the email text part
	UnsubscribeMailto string // NUDGE_UNSUBSCRIBE_MAILTO: mailto: alternative in List-Unsubscribe

	KannelURL      string // NUDGE_KANNEL_SENDSMS_URL: smsbox's sendsms URL; SMS go through Kannel when set (and Twilio is not)
	KannelUser     string // NUDGE_KANNEL_USERNAME
	KannelPassword string // NUDGE_KANNEL_PASSWORD
	KannelKey      string // NUDGE_KANNEL_KEY: the shared secret Kannel's dlr-url and get-url carry (≥ 22 characters)

	// SendGridPublicKey verifies SendGrid's signed Event Webhook
	// (/v1/webhooks/sendgrid); empty, that endpoint answers 404.
	SendGridPublicKey string // NUDGE_SENDGRID_PUBLIC_KEY: the verification key SendGrid shows (base64)
	// SESTopicARNs are the SNS topics whose signed SES notifications
	// /v1/webhooks/ses accepts; empty, that endpoint answers 404.
	SESTopicARNs []string // NUDGE_SES_TOPIC_ARNS: comma-separated

	// Journey webhook steps and webhook subscriptions (channel/webhook).
	WebhookSecret       string   // NUDGE_WEBHOOK_SECRET: signs journey webhook calls; empty: one is made at start (and logged as such)
	WebhookAllowPrivate bool     // NUDGE_WEBHOOK_ALLOW_PRIVATE=1: let webhooks reach loopback and private addresses (local testing)
	WebhookAllowHosts   []string // NUDGE_WEBHOOK_ALLOW_HOSTS: comma-separated hosts or prefixes webhooks may reach though private

	// RateLimits caps messages per second by sending address, provider
	// and workspace, as delivery.ParseRateLimits reads them
	// ("from:default,sms=100"); empty, no limits.
	RateLimits string // NUDGE_RATE_LIMITS, serve --rate-limits

	// LogOnly sends nothing anywhere: every channel, webhooks included, goes
	// to the log sink (serve --demo).
	LogOnly bool
}

func defaultDeliveryConfig() DeliveryConfig {
	return DeliveryConfig{
		Templates:        cmp.Or(os.Getenv("NUDGE_TEMPLATES"), "templates"),
		PublicURL:        os.Getenv("NUDGE_PUBLIC_URL"),
		EmailFrom:        cmp.Or(os.Getenv("NUDGE_EMAIL_FROM"), "nudge@localhost"),
		SMTPURL:          os.Getenv("NUDGE_SMTP_URL"),
		SMSFrom:          os.Getenv("NUDGE_SMS_FROM"),
		TwilioAccountSID: os.Getenv("NUDGE_TWILIO_ACCOUNT_SID"),
		TwilioAuthToken:  os.Getenv("NUDGE_TWILIO_AUTH_TOKEN"),
		TwilioBaseURL:    os.Getenv("NUDGE_TWILIO_BASE_URL"),

		KannelURL:      os.Getenv("NUDGE_KANNEL_SENDSMS_URL"),
		KannelUser:     os.Getenv("NUDGE_KANNEL_USERNAME"),
		KannelPassword: os.Getenv("NUDGE_KANNEL_PASSWORD"),
		KannelKey:      os.Getenv("NUDGE_KANNEL_KEY"),

		TrackEmailText:    os.Getenv("NUDGE_TRACK_EMAIL_TEXT") == "1",
		UnsubscribeMailto: os.Getenv("NUDGE_UNSUBSCRIBE_MAILTO"),

		SendGridPublicKey: os.Getenv("NUDGE_SENDGRID_PUBLIC_KEY"),
		SESTopicARNs:      splitList(os.Getenv("NUDGE_SES_TOPIC_ARNS")),

		WebhookSecret:       os.Getenv("NUDGE_WEBHOOK_SECRET"),
		WebhookAllowPrivate: os.Getenv("NUDGE_WEBHOOK_ALLOW_PRIVATE") == "1",
		WebhookAllowHosts:   splitList(os.Getenv("NUDGE_WEBHOOK_ALLOW_HOSTS")),

		RateLimits: os.Getenv("NUDGE_RATE_LIMITS"),
	}
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// webhookSender builds the sender of journey webhook steps, which also
// carries the subscriptions' calls. Without a configured secret it makes
// one: calls are signed, but no receiver can know the key until it is set.
func (c *DeliveryConfig) webhookSender(logger *slog.Logger, clock nudge.Clock) (*webhook.Sender, error) {
	secret := c.WebhookSecret
	if secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		secret = hex.EncodeToString(b)
		c.WebhookSecret = secret
		logger.Warn("NUDGE_WEBHOOK_SECRET is not set: journey webhook calls are signed with a secret made for this run; set it so receivers can verify them")
	}
	if c.WebhookAllowPrivate {
		logger.Warn("NUDGE_WEBHOOK_ALLOW_PRIVATE=1: webhooks may reach loopback and private addresses")
	}
	s, err := webhook.New(webhook.Config{Secret: secret, AllowPrivate: c.WebhookAllowPrivate,
		AllowHosts: c.WebhookAllowHosts, Clock: clock})
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return s, nil
}

// senders builds one Sender per channel: the configured provider, or a log
// sink that records what would have been sent.
func (c *DeliveryConfig) senders(logger *slog.Logger, clock nudge.Clock) (map[string]nudge.Sender, error) {
	out := map[string]nudge.Sender{}
	if c.LogOnly {
		for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS, nudge.ChannelWebhook} {
			s, err := logsink.New(logsink.Config{Channel: ch, Logger: logger, Clock: clock})
			if err != nil {
				return nil, err
			}
			out[ch] = s
		}
		return out, nil
	}
	if c.SMTPURL != "" {
		s, err := smtpSender(c.SMTPURL, clock)
		if err != nil {
			return nil, err
		}
		out[nudge.ChannelEmail] = s
	}
	if c.TwilioAccountSID != "" {
		s, err := twilio.New(twilio.Config{BaseURL: c.TwilioBaseURL, AccountSID: c.TwilioAccountSID,
			AuthToken: c.TwilioAuthToken, From: c.SMSFrom})
		if err != nil {
			return nil, fmt.Errorf("twilio: %w", err)
		}
		out[nudge.ChannelSMS] = s
	} else if c.KannelURL != "" {
		dlr := ""
		if c.PublicURL != "" && c.KannelKey != "" {
			dlr = strings.TrimSuffix(c.PublicURL, "/") + "/v1/webhooks/kannel/dlr?key=" + url.QueryEscape(c.KannelKey)
		}
		s, err := kannel.New(kannel.Config{SendSMSURL: c.KannelURL, Username: c.KannelUser,
			Password: c.KannelPassword, From: c.SMSFrom, DLRURL: dlr})
		if err != nil {
			return nil, fmt.Errorf("kannel: %w", err)
		}
		out[nudge.ChannelSMS] = s
	}
	ws, err := c.webhookSender(logger, clock)
	if err != nil {
		return nil, err
	}
	out[nudge.ChannelWebhook] = ws
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS} {
		if out[ch] == nil {
			s, err := logsink.New(logsink.Config{Channel: ch, Logger: logger, Clock: clock})
			if err != nil {
				return nil, err
			}
			out[ch] = s
		}
	}
	return out, nil
}

// smtpSender reads an smtp:// URL.
func smtpSender(raw string, clock nudge.Clock) (*smtp.Sender, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, fmt.Errorf("NUDGE_SMTP_URL: want smtp://user:password@host:port?tls=starttls")
	}
	cfg := smtp.Config{Host: u.Hostname(), Clock: clock}
	if p := u.Port(); p != "" {
		if cfg.Port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("NUDGE_SMTP_URL: port %q is not a number", p)
		}
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	switch strings.ToLower(u.Query().Get("tls")) {
	case "", "starttls":
		cfg.TLS = smtp.STARTTLS
	case "implicit":
		cfg.TLS = smtp.ImplicitTLS
	case "opportunistic":
		cfg.TLS = smtp.Opportunistic
	case "none":
		cfg.TLS = smtp.NoTLS
	default:
		return nil, fmt.Errorf("NUDGE_SMTP_URL: tls=%q: want starttls, implicit, opportunistic or none", u.Query().Get("tls"))
	}
	return smtp.New(cfg)
}

// newDelivery builds the delivery worker of `nudge serve`.
func (m *Main) newDelivery() (*delivery.Worker, error) {
	dc := m.Delivery
	dc.Templates = cmp.Or(dc.Templates, "templates")
	set, err := template.Load(os.DirFS(dc.Templates), template.Options{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.Logger.Warn("no templates folder: messages will fail with template_error until it exists", "templates", dc.Templates)
	case err != nil:
		m.Logger.Warn("some templates have problems; messages using them will fail", "err", err)
	}
	senders, err := dc.senders(m.Logger, m.Clock)
	if err != nil {
		return nil, err
	}
	limits, err := delivery.ParseRateLimits(dc.RateLimits)
	if err != nil {
		return nil, fmt.Errorf("--rate-limits (NUDGE_RATE_LIMITS): %w", err)
	}
	// Nodes serving one PostgreSQL share the limits' slots, kept there.
	var slots nudge.RateSlotStore
	if isPostgres(m.Config.DB) {
		slots, _ = m.Store.(nudge.RateSlotStore)
	}
	callbacks := map[string]string{}
	if dc.PublicURL != "" && dc.TwilioAccountSID != "" {
		callbacks[nudge.ChannelSMS] = strings.TrimSuffix(dc.PublicURL, "/") + "/v1/webhooks/twilio/status"
	}
	var prepare func(context.Context, *nudge.Message, *nudge.Contact, *nudge.Outbound) error
	if dc.PublicURL != "" {
		t, err := link.NewTracker(link.Config{Store: m.Store, Clock: m.Clock, PublicURL: dc.PublicURL,
			EmailText: dc.TrackEmailText, UnsubscribeMailto: dc.UnsubscribeMailto,
			CheckSMS: func(text string) error { return template.LintSMS(text, template.SMSLimits{}).Err() }})
		if err != nil {
			return nil, err
		}
		prepare = t.Prepare
	} else {
		m.Logger.Warn("no public URL: links are not tracked and marketing email has no one-click unsubscribe header")
	}
	// Subscriptions hear of what the worker records, as of what the API
	// records (emittingStore).
	var store delivery.Store = m.Store
	if ws, ok := senders[nudge.ChannelWebhook].(*webhook.Sender); ok {
		d, err := webhook.NewDispatcher(webhook.DispatcherConfig{Store: m.Store, Sender: ws, Clock: m.Clock, Logger: m.Logger})
		if err != nil {
			return nil, err
		}
		m.dispatch.Store(d)
		store = m.emitting(m.Store)
		m.emit = func(ctx context.Context, typ, id string, at time.Time, data any) {
			d.Emit(ctx, webhook.Event{ID: id, Type: typ, At: at, Data: data})
		}
	}
	return delivery.New(delivery.Config{
		Store:          store,
		Clock:          m.Clock,
		Logger:         m.Logger,
		Templates:      set,
		Senders:        senders,
		From:           map[string]string{nudge.ChannelEmail: dc.EmailFrom, nudge.ChannelSMS: dc.SMSFrom},
		StatusCallback: callbacks,
		Recheck:        m.recheck(),
		Prepare:        prepare,
		Lease:          m.Config.Lease,
		Limits:         limits,
		Slots:          slots,
		Policy:         storedPolicy(m.Store),
	})
}

// storedPolicy reads the workspace policy in force for the delivery
// worker's SMS rules (opt-out notice, budgets): the latest stored version,
// parsed once per version, or the shipped default when none is stored.
func storedPolicy(s nudge.Store) func(context.Context) (*policy.Policy, error) {
	var mu sync.Mutex
	var cur *policy.Policy
	return func(ctx context.Context) (*policy.Policy, error) {
		v, err := s.PolicyGet(ctx, 0)
		if nudge.ErrorCode(err) == nudge.ENOTFOUND {
			return policy.Default(), nil
		} else if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if cur == nil || cur.Version != v.Version {
			p, err := policy.Parse(fmt.Sprintf("policy@%d", v.Version), v.Source)
			if err != nil {
				return nil, err
			}
			p.Version, cur = v.Version, p
		}
		return cur, nil
	}
}

// emittingStore tells webhook subscriptions what the store records,
// whoever records it: message statuses (the delivery worker, provider
// callbacks), consent changes (STOP, unsubscribe, provider opt-outs),
// events (email bounces, complaints, opens, clicks, SMS replies) and
// converted enrollments (the engine's commits). Writes
// the store skips (a status that does not advance, a duplicate event)
// emit nothing. Until a dispatcher is set (newDelivery) it emits nothing.
type emittingStore struct {
	nudge.Store
	d *atomic.Pointer[webhook.Dispatcher]
}

func (m *Main) emitting(s nudge.Store) *emittingStore {
	return &emittingStore{Store: s, d: &m.dispatch}
}

func (s *emittingStore) MessageUpdate(ctx context.Context, us []*nudge.MessageUpdate, now time.Time) ([]bool, error) {
	applied, err := s.Store.MessageUpdate(ctx, us, now)
	if d := s.d.Load(); err == nil && d != nil {
		d.MessagesUpdated(ctx, s.Store.MessageGet, us, applied, now)
	}
	return applied, err
}

func (s *emittingStore) ConsentRecord(ctx context.Context, ps []*nudge.ConsentRecordParams, now time.Time) ([]nudge.ConsentRecordResult, error) {
	res, err := s.Store.ConsentRecord(ctx, ps, now)
	if d := s.d.Load(); d != nil {
		d.ConsentRecorded(ctx, res)
	}
	return res, err
}

// EngineCommit tells of enrollments the commit converted (their goal met).
func (s *emittingStore) EngineCommit(ctx context.Context, c *nudge.EngineCommit, now time.Time) error {
	err := s.Store.EngineCommit(ctx, c, now)
	if d := s.d.Load(); err == nil && d != nil && d.Wants(ctx, nudge.WebhookEnrollmentConverted) {
		for _, e := range c.Enrollments {
			if e.State == nudge.EnrollmentConverted {
				d.Emit(ctx, webhook.Event{ID: "enrollment:" + e.ID + ":converted", Type: nudge.WebhookEnrollmentConverted, At: now, Data: e})
			}
		}
	}
	return err
}

func (s *emittingStore) EventIngest(ctx context.Context, items []nudge.IngestItem, now time.Time) (*nudge.IngestResult, error) {
	res, err := s.Store.EventIngest(ctx, items, now)
	if d := s.d.Load(); err == nil && d != nil {
		d.EventsIngested(ctx, items, res)
	}
	return res, err
}

// deliveryLoop hands queued messages to providers: at once while there is
// work, every enginePoll otherwise.
func (m *Main) deliveryLoop(ctx context.Context, w *delivery.Worker) {
	defer m.bg.Done()
	t := time.NewTicker(enginePoll)
	defer t.Stop()
	for {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			m.Logger.WarnContext(ctx, "delivery run", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
