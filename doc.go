// Package nudge holds Nudge's domain: contacts, events, consent, API keys,
// the error codes every layer speaks, the Clock, and the Store seam that the
// storage adapters implement.
//
// Nudge is a journey orchestration engine: it decides whether, when and on
// which channel to message a contact, from CRM context. This package imports
// no other package of the project; adapters (store/sqlite, store/postgres,
// api, ingest) meet through its types, and only cmd/nudge wires them.
package nudge
