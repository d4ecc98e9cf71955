package policy

import "strings"

// Reason codes the policy writes into a Decision. Like the engine's, they are
// an API: the timeline, explain and reports match on them, so a code is never
// renamed or reused. docs/reasons.md lists every one (a test keeps it so).
const (
	ReasonAllowed = "allowed" // sent: every rule passed

	// Suppression.
	ReasonSuppressedEmail   = "suppressed_email"   // skipped: the email address is suppressed (do-not-contact, hard bounce, complaint)
	ReasonSuppressedPhone   = "suppressed_phone"   // skipped: the phone number is suppressed (do-not-contact, provider opt-out, unreachable)
	ReasonSuppressedContact = "suppressed_contact" // skipped: the contact as a whole is do-not-contact or erased

	// Consent.
	ReasonNoConsentSMS       = "no_consent_sms"      // skipped: marketing SMS without opted_in SMS consent
	ReasonNoConsentEmail     = "no_consent_email"    // skipped: the policy requires opted_in email consent and there is none
	ReasonOptedOut           = "opted_out"           // skipped: the address opted out of the channel and purpose
	ReasonConsentUnavailable = "consent_unavailable" // deferred: the consent (or another guardrail) lookup failed; never fail open

	// SMS-allowed points.
	ReasonSMSNotAllowedPurpose = "sms_not_allowed_purpose" // skipped: the step's SMS purpose is missing or not allowed
	ReasonAwarenessStage       = "awareness_stage"         // skipped: no marketing SMS at an awareness-only lifecycle stage
	ReasonNotEngaged           = "not_engaged"             // skipped: no engagement within the window before a marketing SMS

	// Quiet hours.
	ReasonQuietHours = "quiet_hours" // deferred: outside the allowed hours in one of the contact's zones
	ReasonQuietDay   = "quiet_day"   // deferred: a day on which no message may go (a Sunday in Alabama)
	ReasonExpired    = "expired"     // skipped: the step's expiry or the purpose's deadline passes before it may go

	// Frequency caps: "cap_" + channel + "_" + window, see CapReason. These
	// are the codes of the shipped caps; a configured cap makes its own.
	ReasonCapSMS24h   = "cap_sms_24h"   // skipped or deferred: SMS cap per rolling 24 hours
	ReasonCapSMS7d    = "cap_sms_7d"    // skipped or deferred: SMS cap per rolling 7 days
	ReasonCapEmail24h = "cap_email_24h" // skipped or deferred: email cap per rolling 24 hours

	// Priority.
	ReasonPriorityLost = "priority_lost" // skipped or deferred: a higher-priority journey's message takes the cap

	// Paused steps.
	ReasonStepPausedOptOutRate = "step_paused_optout_rate" // skipped: the SMS step was paused on its opt-out rate until an admin resumes it

	// SMS budgets (checked at dispatch by the delivery worker).
	ReasonSMSBudgetSpent = "sms_budget_spent" // cancelled at dispatch: the journey's SMS segments for the day (sms_budgets) are spent
)

// Reasons lists every fixed reason code the policy writes, in the order
// docs/reasons.md gives them.
var Reasons = []string{
	ReasonAllowed,
	ReasonSuppressedEmail, ReasonSuppressedPhone, ReasonSuppressedContact,
	ReasonNoConsentSMS, ReasonNoConsentEmail, ReasonOptedOut, ReasonConsentUnavailable,
	ReasonSMSNotAllowedPurpose, ReasonAwarenessStage, ReasonNotEngaged,
	ReasonQuietHours, ReasonQuietDay, ReasonExpired,
	ReasonCapSMS24h, ReasonCapSMS7d, ReasonCapEmail24h,
	ReasonPriorityLost,
	ReasonStepPausedOptOutRate,
	ReasonSMSBudgetSpent,
}

// CapReasonPatterns are the forms of configured caps' codes, as
// docs/reasons.md writes them.
var CapReasonPatterns = []string{"cap_<channel>_<window>", "cap_<channel>_cal<n>d", "cap_journey_<channel>_<window>", "cap_journey_<channel>_cal<n>d"}

// IsCapReason reports whether code is a frequency cap's reason.
func IsCapReason(code string) bool { return strings.HasPrefix(code, "cap_") }
