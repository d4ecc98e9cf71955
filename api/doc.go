// Package api is Nudge's JSON API over HTTP: Segment-compatible ingestion,
// contacts, consent, CSV import, API keys, and the operations endpoints.
//
// # Authentication
//
// Every route under /v1 needs an API key ("nk_<id>_<secret>"), sent either as
// a Bearer token
//
//	Authorization: Bearer nk_…
//
// or, as Segment sources send their write key, as the HTTP Basic username
// with an empty password (curl -u nk_…:). Keys are never accepted in the URL.
// A key's role decides what it may do: ingest keys may only call the ingest
// routes, read keys only the GET routes, admin keys everything. A missing or
// wrong key answers 401, a key with the wrong role 403.
//
// Verified keys are cached for 30 seconds (Config.KeyCacheTTL), keyed by the
// SHA-256 of the token, so ingest does not read the database per call. A key
// revoked through DELETE /v1/apikeys/{id} stops working on that server at
// once; on other servers sharing the database, and after `nudge apikey
// revoke`, within the TTL.
//
// Under /v1 even an unknown route needs a key: without one the answer is
// 401, with one 404 (or 405 if the path exists with another method).
//
// # Errors
//
// Every error is JSON:
//
//	{"error":{"code":"invalid","field":"batch[3].properties.price","message":"expected number, got string"}}
//
// code is one of invalid (400), unauthorized (401), forbidden (403),
// not_found (404), method_not_allowed (405), conflict (409), too_large (413),
// internal (500) or unavailable (503: the database cannot be reached; retry,
// as Retry-After says). field, when present, is the path of the input at
// fault: a JSON path in a body, a query parameter's name, or a CSV column.
//
// # Ingest (role ingest)
//
//	POST /v1/identify   a Segment identify call; traits merge into the contact
//	POST /v1/track      a Segment track call
//	POST /v1/page       a Segment page call, stored as a track event "page.viewed"
//	POST /v1/screen     a Segment screen call, stored as "screen.viewed"
//	POST /v1/batch      {"batch":[{"type":"identify"|"track"|"page",…},…]}
//
// Calls follow Segment's HTTP tracking API: userId (required) and anonymousId,
// traits, event, properties, context, messageId, and timestamp, sentAt and
// originalTimestamp with Segment's clock-skew correction. A single call is
// limited to 32 KiB and a batch to 500 KiB (and 32 KiB per item); a body may
// be gzip-compressed (Content-Encoding: gzip), the limits then hold before
// and after decompression. Over a limit the answer is 413:
//
//	{"error":{"code":"too_large","message":"request body is over 32768 bytes, the limit for /v1/track"}}
//
// A single call answers 200 {"success":true} (plus "duplicate":true when its
// messageId was already stored: a retry is accepted and stored once), or 400
// with the field at fault.
//
// A batch stores its valid items in one transaction and reports each invalid
// item by index and path; nothing valid is dropped for a bad neighbour. If at
// least one item was valid the answer is 200 (as Segment's, so that sources
// do not retry what was stored):
//
//	{"success":true,"stored":98,"duplicates":1,
//	 "errors":[{"index":3,"code":"invalid","field":"batch[3].properties.price","message":"expected number, got string"}]}
//
// If no item was valid, nothing was stored and the answer is the first
// item's error status (400) with the same body plus "error" and
// "success":false. A body that is not a JSON batch at all is a plain 400.
//
// # Contacts
//
//	GET    /v1/contacts                  read   list, filtered and paged
//	GET    /v1/contacts/{id}             read   one contact
//	PUT    /v1/contacts/{id}             admin  create (201) or replace (200)
//	PATCH  /v1/contacts/{id}             admin  merge into an existing contact
//	DELETE /v1/contacts/{id}             admin  erase (privacy request): 204
//	GET    /v1/contacts/{id}/events      read   events, newest first
//	POST   /v1/contacts/import           admin  CSV import
//
// A contact is
//
//	{"id":"u1","email":"jane@example.com","phone":"+14155550123","timezone":"America/Los_Angeles",
//	 "lifecycle_stage":"lead","journey_stage":"trial","is_customer":false,
//	 "attributes":{"plan":"pro"},"created_at":"…","updated_at":"…"}
//
// PUT and PATCH bodies have the same shape. The well-known fields are
// validated (phone numbers become E.164; time zones must be IANA names) and an
// invalid one is a 400 naming it. Attributes go under "attributes"; other
// top-level keys become attributes too, as identify traits do. id, if given,
// must match the path; created_at and updated_at are ignored. PUT replaces the
// whole contact: what the body does not give is cleared. PATCH changes only
// what the body gives: null or "" clears a well-known field, null deletes an
// attribute; PATCH of an unknown contact is 404 (PUT creates).
//
// DELETE erases the contact and its events. Its consent ledger entries stay,
// keyed by a keyed hash of its phone number and email address, so a number
// that opted out stays opted out if the contact is created again.
//
// The list takes these query parameters; any other, or a bad value, is a 400
// naming it: email, phone, lifecycle_stage, journey_stage, is_customer
// (true|false), updated_after (RFC 3339), attributes.<name>=<value> (equality
// with the attribute's JSON scalar as text: "pro", "42", "true"), limit (1 to
// 1000, default 50) and cursor. The answer is
//
//	{"contacts":[…],"next_cursor":"…"}
//
// with next_cursor absent on the last page. Events take name (only track
// events of that name), limit and cursor and answer {"events":[…],"next_cursor":"…"}.
//
// An import's body is the CSV (Content-Type text/csv; columns map by header),
// or multipart/form-data with an optional part "mapping" (a mapping file, as
// for `nudge import contacts --mapping`) followed by a part "file" holding
// the CSV. The body is streamed, up to Config.MaxImportBytes (4 GiB by
// default). Bad rows are skipped and reported with their line numbers; the
// answer is the import summary (200):
//
//	{"imported":998,"updated":0,"rejected":2,"consent_rejected":0,
//	 "errors":[{"line":7,"field":"phone","message":"…"}]}
//
// # Consent
//
//	GET  /v1/contacts/{id}/consent   read   current state and the ledger
//	POST /v1/contacts/{id}/consent   admin  record one change or several
//	GET  /v1/consent/ledger.csv      read   the whole ledger as CSV (?contact_id= for one)
//
// GET answers the current status of every channel (email, sms) and purpose
// (marketing, transactional), "unknown" where nothing was ever recorded, and
// the contact's ledger entries, oldest first:
//
//	{"contact_id":"u1","consent":[{"channel":"email","purpose":"marketing","status":"unknown"},…],
//	 "ledger":[{"id":1,"contact_id":"u1","address_hash":"…","channel":"sms",…}]}
//
// POST takes
//
//	{"channel":"sms","purpose":"marketing","status":"opted_in","source":"form",
//	 "evidence":{"text":"…","form_url":"…","ip":"…","keyword":"…"},"occurred_at":"2026-03-02T09:00:00Z"}
//
// with purpose defaulting to marketing, source to api and occurred_at to now.
// One object answers 201 with the ledger entry, or its error: 400 for a bad
// value, 409 when the change may not be recorded (an import or API call
// cannot opt back in an address that opted out by keyword, form or provider;
// only the person or an admin-sourced change can). An array answers 201 with
// {"entries":[…],"errors":[{"index":1,"code":"conflict",…}]} if at least one
// change was recorded, else the first error's status with the same body.
//
// The CSV export is streamed in ledger order with the columns id, contact_id,
// address_hash, channel, purpose, status, source, evidence_text,
// evidence_form_url, evidence_ip, evidence_keyword, occurred_at, recorded_at.
// Free-text cells that a spreadsheet would run as a formula (starting with =,
// +, -, @) get a leading apostrophe. If the database fails mid-export the
// connection is cut, so a partial file is never mistaken for a whole one.
//
// # API keys (role admin)
//
//	POST   /v1/apikeys        {"role":"ingest","name":"segment"} → 201 {"id":…,"role":…,"token":"nk_…"}
//	GET    /v1/apikeys        {"api_keys":[{"id":…,"name":…,"role":…,"created_at":…,"revoked_at":…}]}
//	DELETE /v1/apikeys/{id}   revoke: 204
//
// The token is shown only in the POST answer; keys are stored hashed.
//
// # Operations (no key)
//
//	GET /healthz   200 while the process runs
//	GET /readyz    200 if the database answers within 2 s, else 503
//	GET /metrics   Prometheus metrics
//
// Metrics: http_requests_total{route,method,code},
// http_request_duration_seconds{route}, nudge_ingest_events_total{type,outcome}
// (outcome stored, duplicate or rejected), nudge_ingest_batch_size,
// nudge_contacts_imported_total, and the Go and process collectors. route is
// the matched pattern ("POST /v1/track"), never the raw path.
//
// Every response carries X-Content-Type-Options: nosniff and Cache-Control:
// no-store. A handler's panic is logged and answered 500; a database that
// cannot be reached is answered 503, never a crash.
package api
