// Package delivery is the outbox worker: it takes queued messages from the
// store, re-checks them at dispatch, renders their templates, hands them to
// the channel's nudge.Sender and records every step in the message's status
// history.
//
// # One pass
//
// Worker.RunOnce does one pass and returns; it never sleeps and reads time
// only from its nudge.Clock, so the server's loop, the simulator and the
// tests drive it alike. A pass:
//
//  1. Recovers stuck messages: those left in status sending by a process
//     that died (their claim expired). SMS is at-most-once: such a message
//     becomes outcome_unknown and is never sent again. Email is requeued
//     when Config.EmailAtLeastOnce is set, else outcome_unknown too.
//  2. Claims a batch of due queued messages and loads their contacts in one
//     read. Several goroutines (Config.Concurrency) then take the messages
//     one by one: check the maximum age (failed, max_age), re-check the
//     guardrails (Config.Recheck: cancelled with its reason), find the
//     address (failed, no_address), render the template (failed,
//     template_error), mark the message sending, and call the provider.
//  3. Records the outcomes of the batch in one transaction: sent with the
//     provider's id; failed at once with the provider's code on a permanent
//     refusal (and, when the provider says the recipient opted out, an
//     opted_out consent entry with source provider and a provider_opt_out
//     suppression); requeued with backoff on a temporary one, until the
//     maximum age fails it (max_age); and outcome_unknown (or, for email
//     with EmailAtLeastOnce, a requeue) when the provider call ended without
//     an answer (a timeout, a dropped connection).
//
// # Why sending is committed first
//
// A message is marked sending, and that mark is committed, before its
// provider call begins: a process that dies during the call leaves a
// sending message whose claim expires, which the next pass recognises as an
// unknown outcome instead of sending it again. The marks of the messages
// being sent at the same moment share one transaction (a group commit), so
// a crash leaves at most Config.Concurrency messages with an unknown outcome.
// The final statuses of a batch are written together at its end: a crash
// before that write leaves the batch's messages sending, and they are
// recovered as outcome_unknown, which is what they are.
//
// # Webhook messages
//
// A webhook step's call sits in the same outbox (channel webhook). When
// Config.Senders has a "webhook" sender, the worker delivers it like any
// other message: no template, To is the step's URL, Text the JSON of the
// message. Without one (the webhook issue builds it), the message is parked:
// left queued, with AvailableAt moved an hour on, so it neither fills every
// claimed batch nor is lost; the day a webhook sender is configured, it
// goes. Parked webhook messages are not failed by the maximum age.
package delivery
