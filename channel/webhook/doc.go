// Package webhook POSTs signed JSON to URLs that users set: the journey
// `webhook` step (a nudge.Sender of channel "webhook", fed by the delivery
// worker) and the CRM write-back subscriptions (Dispatcher).
//
// # Signature
//
// Every call carries
//
//	Content-Type: application/json
//	Nudge-Webhook-Id: <id>          stable across retries: deduplicate on it
//	Nudge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where v1 is HMAC-SHA256, keyed with the shared secret, over the decimal
// timestamp, a dot and the raw request body: `t + "." + body`. A receiver
// recomputes it over the bytes it received (before any JSON decoding),
// compares in constant time, and refuses a timestamp too far from its own
// clock (5 minutes, say) so a captured call cannot be replayed later. In Go:
//
//	func verify(secret []byte, header string, body []byte, now time.Time) bool {
//		var ts, sig string
//		for _, kv := range strings.Split(header, ",") {
//			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
//			switch k {
//			case "t":
//				ts = v
//			case "v1":
//				sig = v
//			}
//		}
//		t, err := strconv.ParseInt(ts, 10, 64)
//		if err != nil || now.Sub(time.Unix(t, 0)).Abs() > 5*time.Minute {
//			return false
//		}
//		mac := hmac.New(sha256.New, secret)
//		mac.Write([]byte(ts + "." + string(body)))
//		want := hex.EncodeToString(mac.Sum(nil))
//		return hmac.Equal([]byte(sig), []byte(want))
//	}
//
// Verify does the same and is what this package's tests use.
//
// # Where calls may go (SSRF)
//
// A URL set by a user must not reach into Nudge's own network. The check
// runs at dial time, on the address actually connected to (a net.Dialer
// Control function), so a name that resolves to a public address when
// validated and to 127.0.0.1 when called (DNS rebinding) is refused all
// the same. Refused: loopback, link-local (169.254/16, fe80::/10, which
// holds cloud metadata services), private (RFC 1918, RFC 6598 shared
// 100.64/10, IPv6 ULA fc00::/7), unspecified, broadcast and multicast
// addresses, IPv4-mapped forms included. Config.AllowPrivate lifts the
// check (local testing); Config.AllowHosts lifts it for named hosts or
// address prefixes ("crm.internal", "10.1.0.0/16"). No proxy from the
// environment is used (the check would see the proxy, not the target),
// and redirects are not followed: a 3xx is a permanent failure.
//
// # Subscriptions
//
// A Dispatcher sends each event to the subscriptions that chose its type,
// signed with the subscription's own secret, with Nudge-Event set to the
// type and Nudge-Webhook-Id to the event's ID. The body is
//
//	{"id": "<event id>", "type": "message.sent", "created_at": "…", "data": {…}}
//
// Emit writes one pending delivery per subscription to the store
// (nudge.WebhookPending, one per subscription and event id); the
// Dispatcher's loop claims due ones like the message outbox (SKIP LOCKED
// on PostgreSQL, so several nodes share them), calls, and settles them.
// A failed attempt is retried with backoff (DefaultDispatchBackoff, or the
// receiver's Retry-After when longer) up to DispatcherConfig.Attempts
// times; every attempt is appended to the store's delivery log. Nothing
// waits in memory: after a restart the pending deliveries are still there,
// and one claimed by a process that stopped mid-call is claimed again when
// its lease ends (at least once: receivers deduplicate on the id). The
// subscription list is cached for DispatcherConfig.CacheTTL.
//
// What is emitted: the delivery worker's statuses and, through a store
// that emits (cmd/nudge), every status, consent change and event recorded
// anywhere: provider callbacks (message.delivered, message.undelivered,
// message.failed), email events (email.bounced, email.complained,
// email.opened), clicks (message.clicked), replies (sms.replied) and
// consent changes (consent.opted_out, consent.opted_in); and, from the
// engine's commits, converted enrollments (enrollment.converted). See
// emit.go.
//
// # Outcomes
//
// 2xx: accepted (the message is recorded delivered: the receiver has it).
// 429 (honouring Retry-After), 408, 5xx, timeouts and connection failures:
// temporary, retried. A refused address, a 3xx and any other 4xx:
// permanent.
package webhook
