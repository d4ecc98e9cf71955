// Package nudgetest holds what tests across Nudge share: a fake clock, and
// helpers that open a fresh store (SQLite in a temp dir; PostgreSQL in its own
// schema when NUDGE_TEST_POSTGRES names a server).
package nudgetest
