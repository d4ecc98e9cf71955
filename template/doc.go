// Package template renders Nudge's message templates and lints SMS text.
//
// Templates are Liquid (github.com/osteele/liquid) files beside a journey,
// in its templates folder: NAME.email.liquid holds an email (headers such as
// Subject, then the text and an optional HTML part) and NAME.sms.liquid the
// text of an SMS. docs/templates.md is the reference for the layout, the data
// (contact, event, journey, message) and the filters.
//
// Segments and LintSMS are pure: they tell how an SMS text is encoded (GSM-7
// or UCS-2), how many segments it costs and whether it should be sent.
package template
