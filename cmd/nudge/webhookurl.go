package main

import "github.com/nudge/nudge/channel/webhook"

// checkWebhookURL refuses, when a subscription is created, a URL that the
// webhook sender's dial guard would refuse to call with this server's
// allowances (NUDGE_WEBHOOK_ALLOW_PRIVATE, NUDGE_WEBHOOK_ALLOW_HOSTS).
func (m *Main) checkWebhookURL(url string) error {
	return webhook.CheckURL(url, m.Delivery.WebhookAllowPrivate, m.Delivery.WebhookAllowHosts)
}
