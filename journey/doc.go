// Package journey is Nudge's journey definition language: it parses a journey
// YAML file, validates it, and compiles its CEL conditions once, so that the
// engine only ever runs journeys that are known to be well formed.
//
// A journey file holds one journey: an id, a trigger (an event, a contact
// attribute condition, or a date in the contact's data), entry rules, a
// re-entry policy, an optional holdout, a goal, exit rules and an ordered list
// of steps. docs/journeys.md is the format reference; Schema returns the JSON
// Schema that editors use to complete and check it.
//
// Parse reports every problem it finds, not only the first, each with the
// file, line and column it is about and what to write instead:
//
//	webinar.yaml:14:7: unknown step "txt" in next; the steps are: confirm, day-before, reminder
//
// Conditions are CEL expressions over three variables: contact (a
// nudge.Contact: id, email, phone, timezone, lifecycle_stage, journey_stage,
// is_customer, attributes, created_at, updated_at), event (a nudge.Event:
// name, type, properties, timestamp, contact_id, message_id, …) and journey
// (JourneyVars: id, version, key, entered_at, steps). Field names are checked
// and typed when the journey is parsed; attributes and properties are dynamic.
// Evaluation has a cost limit, and an evaluation error is returned as an
// error, never taken as false.
package journey
