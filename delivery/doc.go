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
//  2. Claims a batch of due queued messages and reads it in parts (twice
//     Config.Concurrency messages, then twice as many each time), each
//     part's contacts and enrollments in one read: it checks the maximum
//     age (failed, max_age), then re-checks the guardrails of the part's
//     messages left, all at once (Config.Recheck: cancelled with its
//     reason). Several goroutines (Config.Concurrency) take the messages
//     of each part one by one, while the next part is read: find the
//     address (failed, no_address), render the template (failed,
//     template_error), mark the message sending, and call the provider.
//     While a claim comes back full (Config.Batch messages), the pass
//     claims again once the claim's last part is read, Config.Claims
//     batches at most, so that the next batch's claim and first reads run while
//     the senders finish the one before instead of with every sender idle.
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
// unknown outcome instead of sending it again.
//
// A pass runs in three stages joined by short queues: preparers (checks,
// enrollment, render), one marker, and senders (Config.Concurrency each).
// The marker commits the sending marks of a group in one transaction,
// together with the outcomes recorded since its last one, so a burst of
// sends costs one write and no send waits for the slowest of its batch. A
// group waits for a quarter of the senders to be free (or for the last
// messages of the pass): marks one at a time, as senders come free, cost
// several commits where one would do. The marker marks a message only for a sender that is free to
// call its provider at once, so a crash leaves at most Config.Concurrency
// messages marked sending, the calls in flight; an SMS among them that had
// not reached its provider is not sent again (at-most-once), so every
// message marked ahead of a free sender would be a text lost at a crash.
// Those messages become outcome_unknown; it is recorded and shown, never
// silent. Outcomes not yet written when a pass
// ends are written then; a crash before that write leaves their messages
// sending, and they are recovered as outcome_unknown, which is what they
// are to the store.
//
// # Rate limits
//
// Config.Limits caps messages per second by sending address (a US long
// code takes 1, a toll-free number 3, a short code 100: RateLimits
// SenderDefaults), by provider (per channel) and for the workspace. A
// message whose slot is not now is deferred to it (left queued, released
// from its claim, AvailableAt moved on) rather than waited for, so no
// goroutine sleeps on a slow sender and the other senders' messages of
// the batch go at once; a message whose slot would be past its maximum
// age fails at once (rate_limit). Slots are spaced evenly (the generic
// cell rate algorithm), so over a minute a backlogged sender sends its
// rate × 60, never more than its rate plus one in any second.
//
// The limits' slots are kept in the Worker's memory, or, with
// Config.Slots, in the store: nudge serve on PostgreSQL does that, so the
// nodes serving one database share each limit (two nodes on a 1 MPS long
// code send 60 a minute together, not 120). A limit's next free slot and
// each deferred message's hold are rows, reserved with one upsert per
// message and level; a message deferred by one node and claimed by another
// goes on from its hold. A slot is wasted (the limit undershoots by it)
// only when the message that reserved it ends before it is sent: its
// template fails, its SMS budget is spent, it is cancelled while it waits.
//
// # Webhook messages
//
// A webhook step's call sits in the same outbox (channel webhook). When
// Config.Senders has a "webhook" sender, the worker delivers it like any
// other message: no template, To is the step's URL, Text the JSON of the
// message. Without one (the webhook issue builds it), the message is parked:
// left queued, with AvailableAt moved WebhookPark on (a status-less
// MessageUpdate), so it neither fills every claimed batch nor is lost; the
// day a webhook sender is configured, it goes. Parked webhook messages are
// not failed by the maximum age.
package delivery
