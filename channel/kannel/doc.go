// Package kannel sends SMS through a Kannel gateway: smsbox's HTTP sendsms
// interface, with a delivery-report URL (dlr-url) pointing back at Nudge.
//
// Kannel returns no message id from sendsms, so the Sender puts Nudge's own
// message ID into the dlr-url (…&message_id=ID&type=%d) and returns it as
// the ProviderID: the delivery report names the message it is about.
//
// Send classifies smsbox's answers for the delivery worker:
//
//	202 "0: Accepted for delivery", "3: Queued for later delivery"
//	        accepted: the message is with bearerbox (status sent)
//	4xx     a refusal of this message ("Missing receiver number",
//	        "Number compiled by … is not allowed"…): permanent
//	401/403 bad username or password, a denied IP: temporary, since it
//	        fails every message alike and fixing the configuration sends them
//	429, 5xx  ("Sending failed." when bearerbox is down or its queue is full):
//	        temporary
//
// A timeout or a dropped connection after the request was written is a plain
// error: smsbox may or may not have queued the message. A failed dial is a
// temporary *nudge.SendError: nothing reached smsbox.
//
// The Kannel side of the configuration (a sendsms-user for Nudge, an
// sms-service whose get-url calls Nudge's inbound endpoint) follows.
//
// # Kannel configuration
//
// bearerbox and smsbox need, besides the core, smsbox and smsc groups:
//
//	group = sendsms-user
//	username = nudge
//	password = LONG-RANDOM-SECRET
//	user-allow-ip = "127.0.0.1"
//	max-messages = 10        # parts of a long text
//	concatenation = true
//
//	group = sms-service
//	keyword = default
//	get-url = "http://127.0.0.1:8080/v1/webhooks/kannel/inbound?key=SECRET&from=%p&to=%P&text=%a&id=%I&ts=%t"
//	max-messages = 1         # the answer (a keyword's reply) goes back as an SMS
//	omit-empty = true
//	accept-x-kannel-headers = true  # else smsbox drops the reply's coding ("Tried to set Coding field, denied")
//
// Nudge answers the get-url with a keyword's reply (STOP's confirmation,
// HELP's text) as text/plain, or with an empty body. smsbox sends that
// answer to the sender as an SMS, which is how keyword replies go out (set
// max-messages = 0 to send none); with omit-empty it sends nothing for an
// empty answer. A non-2xx answer makes smsbox log an error; Nudge answers
// 2xx once the message is handled.
//
// The dlr-url and the get-url carry Nudge's Kannel key (api.Config.KannelKey)
// in their query, since Kannel cannot sign a request: keep smsbox and Nudge
// on loopback or a private link, never across the Internet, and keep the
// URLs out of shared logs.
package kannel
