// Package web is Nudge's console: server-rendered pages (html/template, with
// templates and assets embedded) for marketers who do not read JSON. It
// shows what the rest of Nudge records: every journey with its numbers, a
// journey drawn as a graph with its funnel counts, and a contact's consent
// and timeline with the sentence of every decision.
//
// Users sign in with an email and password (bcrypt); a session is a random
// token in an HttpOnly, SameSite=Lax cookie whose SHA-256 alone is stored.
// Every POST carries the session's CSRF token in a hidden field. Viewers
// read, editors also pause and resume journeys, admins may do everything.
//
// The console takes every path the JSON API does not (see cmd/nudge serve).
package web
