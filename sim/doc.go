// Package sim is Nudge's simulator: it runs the real engine and the real
// guardrails on a virtual clock against a temporary SQLite store (opened
// with sqlite.OpenPrivate: one connection, nothing synced), replaying a
// timeline of Segment-style identify and track calls, and reports every
// decision and the totals a marketer checks before a journey goes live.
//
// The replay is exact: between two events the clock jumps to the next time
// anything is due (an enrollment's wake time, a date trigger's time, the
// next event), so waits fire at their own times and decisions carry them.
// Enrollment and message ids come from a counter and the store is fresh, so
// the same input always gives the same report, byte for byte.
//
// Order of a run: the contacts CSV is imported (as ingest.Import does) and
// the engine drains the changes it leaves before any journey is published:
// the starting state of the CRM is not a change that triggers journeys.
// Then the journeys are published at --from and the timeline is replayed.
// Events before From or after To are left out (the report counts them).
//
// Inbound SMS: an sms.replied call whose body is an opt-out or opt-in
// keyword changes the contact's SMS consent as the provider's webhook
// would (see inbound.go), and the guardrail that pauses an SMS step on its
// opt-out rate (engine.CheckOptOutPauses) runs on the virtual clock before
// each moment's work; the report lists the steps it paused.
//
// Delivery: the simulator has no channels; a message counts as handed to
// its provider the moment it is available, so a later conversion cancels
// only messages not yet available (deferred ones). docs/simulation.md
// describes the timeline format and the report.
package sim
