// Package engine runs journeys: it turns events, contact changes, due waits
// and date triggers into enrollment transitions, and commits each with its
// decision records and outbox messages in one store transaction
// (nudge.EngineStore.EngineCommit).
//
// The core is pure: Advance and Enter compute a Transition from (journey
// version, enrollment, contact, input, now) and nothing else, so the live
// server, the simulator and the tests run the same code; time comes from the
// injected clock and nothing sleeps. The Engine around it claims work from
// the store (inbox items, due enrollments) in batches, reads the batch's
// contacts together (in one query when the store has ContactGetMany),
// evaluates, and commits the whole batch in one transaction, falling back to
// one transaction per item or enrollment when that conflicts. Several
// engines may share one PostgreSQL store: claims hand each item to one of
// them, and an optimistic revision check on every enrollment (ECONFLICT)
// makes each transition happen once. The engine holds one batch at a time:
// its memory does not grow with the number of waiting enrollments.
//
// # Steps
//
// An enrollment runs steps until it waits or ends, within one transition
// (at most MaxSteps). email and sms put a queued message in the outbox
// (see Idempotency keys) unless the contact has no address for the channel
// (no_address) or the enrollment is held out (held_out: nothing is sent,
// including webhooks; update_contact still applies). Config.Policy, the
// guardrails' hook, may skip or defer a send. wait and wait_for make the
// enrollment wait with a wake time; a wait whose time already passed
// continues at once (wait_passed). until_local uses the contact's time zone,
// UTC when it has none (the decision says so).
//
// # Idempotency keys
//
// A message's idempotency key is "ENROLLMENT:STEP:vN", where N counts the
// enrollment's visits to the step (nudge.StepRecord.Visits, stored with
// the enrollment): 1 the first time it reaches the step, 2 when a loop
// brings it back (through a wait, or through a wait that has already passed
// within one transition), and so on. A deferred send tried again is the
// same visit. The same transition computed twice (two engines, or again
// after a crash) starts from the same stored visits and gets the same key,
// so the outbox keeps one message; a true revisit always gets a new one.
//
// # Attribute triggers
//
// An attribute trigger fires on an edge, not a level: every contact change
// (identify, import, the contacts API, an update_contact step's patch in
// EngineCommit) leaves an inbox item holding the contact as it was before
// and after the change (nudge.InboxItem.Before, After), and the contact
// enters when the condition is false on Before (or Before is nil: the
// change created it) and true on After. A contact who keeps matching does
// not enter again on an unrelated change, whatever the re-entry policy.
// Each change is judged on its own contacts, not on the contact as it is
// when the engine gets to it, so several changes processed in one batch
// are not mistaken for several edges; the entry itself (entry rules, goal,
// steps) then runs on the contact as it is now.
//
// # Errors in conditions
//
// A CEL evaluation error is never silently false:
//   - a branch case that fails is taken as false and a decision
//     (skipped, condition_error) records the error;
//   - a value a step needs (a wait's until) that fails ends the enrollment
//     (exited, condition_error); a key or an entry rule or trigger filter
//     that fails keeps the contact out (not_entered, condition_error).
//
// Goal and exit conditions, attribute triggers and wait_for matches are
// checked on every event and contact change, where a failure (typically a
// missing attribute) counts as "not met" without a decision, which would
// otherwise flood the log.
//
// # Goals and exits
//
// On every inbox item, each live enrollment of the contact is checked: goal
// event (within its window) or goal condition → converted (goal_met), its
// queued messages cancelled; else an exit rule → exited (exit_rule),
// messages cancelled; else an awaited event → on_event. Due enrollments are
// checked against the goal condition and exit rules before they advance.
// Paused journeys take no entries and their waits hold (their due
// enrollments are released); goals and exit rules still end their
// enrollments, but awaited events are not taken while paused.
//
// Right before a queued message is handed to a provider, delivery asks
// Engine.Recheck: the enrollment must not have converted or been ended by
// an exit rule, the goal condition and exit rules must still be false, and
// suppression and consent are checked again with the policy in force. A
// completed enrollment's message still goes; quiet hours and caps are not
// applied again (they were decided at queue time).
//
// # Limitations
//
// A date trigger's check reads, on every run, the contacts whose date falls
// on the three or four days that can put a trigger time in the window (see
// ProcessDates), most of which are not due yet: at a million contacts with
// dates spread over a year, about ten thousand small rows per run and
// journey. An attribute whose name holds a quote, a backslash or a control
// character cannot be indexed; its journeys read every contact.
package engine
