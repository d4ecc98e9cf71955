// Package web is Nudge's console: server-rendered pages (html/template, with
// templates and assets embedded) for marketers who do not read JSON. It
// shows what the rest of Nudge records: every journey with its numbers, a
// journey drawn as a graph with its counts and its report as SVG charts, a
// contact's consent and timeline with the sentence of every decision, and
// the message log with each message's status history and why. Editors
// publish journeys (problems shown at their line) and simulate them with
// package sim before publishing; admins publish the policy and manage API
// keys, webhook subscriptions and users.
//
// Users sign in with an email and password (bcrypt); a session is a random
// token in an HttpOnly, SameSite=Lax cookie whose SHA-256 alone is stored.
// Every POST carries the session's CSRF token in a hidden field, and its
// body is bounded (1 MiB; Config.MaxUpload for a form with files). Viewers
// read, editors also pause, resume, publish and simulate journeys, admins
// may do everything.
//
// Charts are drawn here as SVG, readable without colour: series differ by
// pattern as well as colour, and every number is written as text.
//
// The console takes every path the JSON API does not (see cmd/nudge serve).
// docs/console.md describes it page by page.
package web
