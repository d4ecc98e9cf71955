package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/web"
)

// consoleConfig wires the web console: the store, the examples folder for
// the simulate page, a way to open a simulation's store for its report,
// and what the settings page says of the providers.
func (m *Main) consoleConfig(s nudge.Store) web.Config {
	cfg := web.Config{
		Store:  s,
		Clock:  m.Clock,
		Logger: m.Logger,
		OpenStore: func(ctx context.Context, path string) (nudge.Store, error) {
			return openStore(ctx, "sqlite:"+path)
		},
		Providers: m.Delivery.providers(),
	}
	dir := m.Examples
	if dir == "" {
		dir = "examples"
	}
	if st, err := os.Stat(filepath.Join(dir)); err == nil && st.IsDir() {
		cfg.Examples = os.DirFS(dir)
	}
	return cfg
}

// providers says which provider each channel uses, from the settings alone.
func (dc DeliveryConfig) providers() []web.Provider {
	email := web.Provider{Channel: nudge.ChannelEmail, Name: "log sink (NUDGE_SMTP_URL not set): email is logged, not sent"}
	if dc.SMTPURL != "" && !dc.LogOnly {
		email = web.Provider{Channel: nudge.ChannelEmail, Name: "SMTP", Configured: true, Detail: redactURL(dc.SMTPURL) + ", from " + dc.EmailFrom}
	}
	sms := web.Provider{Channel: nudge.ChannelSMS, Name: "log sink (neither Twilio nor Kannel set): SMS are logged, not sent"}
	switch {
	case dc.LogOnly:
	case dc.TwilioAccountSID != "":
		sms = web.Provider{Channel: nudge.ChannelSMS, Name: "Twilio", Configured: true, Detail: "account " + dc.TwilioAccountSID + ", from " + dc.SMSFrom}
	case dc.KannelURL != "":
		sms = web.Provider{Channel: nudge.ChannelSMS, Name: "Kannel", Configured: true, Detail: redactURL(dc.KannelURL) + ", from " + dc.SMSFrom}
	}
	if dc.LogOnly {
		email.Name = "log sink (serve --demo): nothing leaves the machine"
		sms.Name = email.Name
	}
	return []web.Provider{email, sms}
}
