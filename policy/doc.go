// Package policy is Nudge's guardrails: every email or SMS a journey wants to
// send passes Policy.Evaluate, a pure function of (facts, now) that returns a
// Decision with a stable reason code (docs/reasons.md), the facts it used and
// a sentence a marketer can read:
//
//	SMS 'demo-nudge' deferred to 08:00 America/Chicago tomorrow (quiet hours 21:00–08:00; zone from phone +1 312).
//	Skipped: SMS cap 1 per 24 h reached by 'webinar-reminder' sent 14:02.
//
// The rules run in this order, and the first that stops a send decides:
//
//  1. suppression (suppressed_email, suppressed_phone, suppressed_contact);
//  2. consent: marketing SMS needs opted_in, marketing email and
//     transactional messages need not opted_out (configurable to opted_in);
//     a STOP by keyword stops every text; a failed lookup never sends;
//  3. SMS-allowed points: declared and allowed purposes, no marketing SMS at
//     awareness-only lifecycle stages, optional recent engagement;
//  4. expiry and quiet hours in the contact's local time: the contact's
//     zone, else every zone libphonenumber gives for the number's prefix
//     (the send must be allowed in each), else the workspace default; the
//     window of the number's region (US states by area code, countries by
//     calling code) replaces the default; a send outside is deferred to the
//     next allowed minute plus a jitter hashed from contact and message;
//  5. frequency caps, rolling or by calendar day in the contact's zone,
//     across journeys or per journey; skip or defer to when the cap frees;
//  6. priority: a higher-priority journey's pending message that shares a
//     cap window takes the room; the loser's reason names the winner.
//
// Nothing here reads a store or the clock: the engine gathers Facts (in
// bulk for a batch), calls Evaluate with its transaction's now, and records
// Decision.Record. A policy file (Parse) holds the workspace's rules; what
// it leaves out keeps the strict defaults (Default). A journey or a step
// may tighten them (ParseOverride, Policy.Tighten) but never loosen them.
//
//	timezone: America/Chicago
//	consent:
//	  email: {marketing: opted_in}
//	sms:
//	  purposes: [reminder, decision_point, time_sensitive, transactional]
//	  awareness_stages: [subscriber]
//	  engagement: {within: 30d, events: [email.opened, email.clicked, page.viewed]}
//	quiet_hours:
//	  sms:
//	    allow: "08:00-21:00"
//	    regions:
//	      US-TX: {allow: "09:00-21:00", days: [mon, tue, wed, thu, fri, sat]}
//	  email: {allow: "07:00-22:00"}
//	jitter: 15m
//	caps:
//	  - {channel: sms, limit: 1, per: 24h}
//	  - {channel: sms, limit: 3, per: 7d}
//	  - {channel: email, limit: 2, per: 24h}
//	  - {channel: email, limit: 1, calendar_days: 1, scope: journey}
//	transactional: {bypass_caps: false, count_when_bypassing: false}
//	on_cap: skip
//	priorities: {onboarding: 10, newsletter: -5}
//	keywords: {program: Acme Events, frequency: Up to 4 msgs/month, support: help@acme.example}
//
// ParseKeyword reads inbound SMS: opt-out, opt-in and help keywords per
// language with their replies, and messages that read as a revocation,
// flagged for review.
package policy
