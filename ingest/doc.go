// Package ingest turns outside input into domain values: Segment HTTP
// tracking API calls into nudge.IngestItem, contact JSON (identify traits,
// API PATCH and PUT bodies) into nudge.ContactPatch, and CRM exports in CSV
// into contact patches and consent changes.
//
// Everything here is pure: no clock (times are arguments), no network, and
// the store is touched only by Import, through nudge.Store. Every parser of
// outside input is fuzzed.
//
// # Errors
//
// Bad input is an EINVALID *nudge.Error (ETOOLARGE for size limits) that
// says what was wrong and where: Field is the JSON path of the offending
// value ("batch[3].properties.price: expected number, got string"), and
// malformed JSON names the line, column and byte offset where the decoder
// stopped. A CSV row's problem is a RowError naming the line and the column's
// header ("line 17, column \"phone\": \"12\" is not a valid phone number for
// region US"). One bad event never costs the rest of its batch, and one bad
// row never costs the rest of its import.
//
// # Segment
//
// Parser accepts identify, track, page and screen calls, alone or in a
// batch. page and screen become track events named "page.viewed" and
// "screen.viewed". userId is required (a JSON number is taken as its decimal
// text); calls with only an anonymousId are not supported yet. Numbers in
// properties, traits and context become int64 when integral and float64
// otherwise. Timestamps are corrected for client clock skew as Segment does
// (see eventTime). Deduplication by messageId is the store's job.
//
// # Contacts
//
// ContactNormalizer validates the well-known fields: phone numbers to E.164
// with libphonenumber (github.com/nyaruka/phonenumbers), IANA time zones,
// email addresses. Everything that is not a well-known field is an attribute.
//
// # CSV import
//
// CSVReader streams a CRM export row by row with bounded memory: a header,
// then one contact per row, columns mapped to contact fields by a Mapping
// (defaults recognise common CRM headers). Import writes the rows to a store
// in batches, one ContactMerge and one ConsentRecord per batch.
package ingest
