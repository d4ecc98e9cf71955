// Package store is the home of Nudge's storage adapters. The storage seam
// itself, nudge.Store, lives in the root package: the domain owns the
// interface, and the adapters implement it.
//
// Each database has one package here (store/sqlite, store/postgres) holding
// all of that database's SQL and its embedded, numbered migrations. The
// conformance suite in store/storetest states what every store must do; both
// stores run it, so a behaviour the suite does not pin down is one the rest of
// Nudge must not rely on.
package store
