// Package channel holds the providers that carry messages out of Nudge, one
// small package each. The seam they implement, nudge.Sender with
// nudge.Outbound, nudge.SendResult and nudge.SendError, lives in the root
// package; this package itself has no code.
//
//   - channel/twilio: SMS through Twilio's REST API, plus the webhook
//     signature check and parsers for status callbacks and inbound messages.
//   - channel/smtp: email over SMTP (STARTTLS or implicit TLS, auth, a
//     reused connection), multipart HTML and text.
//   - channel/logsink: the default provider of serve and demo: it records
//     what would have been sent and touches no network.
//
// Adapters do not import each other; only cmd/ wires them. Every adapter
// classifies a provider's refusal as a *nudge.SendError (Permanent, or
// temporary with RetryAfter) and returns any other error when the outcome is
// unknown, so the delivery worker can tell "failed" from "may have been sent".
package channel
