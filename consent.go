package nudge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"time"
)

// Channels a contact can be messaged on.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// Consent statuses.
const (
	ConsentOptedIn  = "opted_in"
	ConsentOptedOut = "opted_out"
	ConsentUnknown  = "unknown"
)

// Consent purposes.
const (
	PurposeMarketing     = "marketing"
	PurposeTransactional = "transactional"
)

// Consent sources: where a change came from.
const (
	SourceAPI      = "api"
	SourceImport   = "import"
	SourceForm     = "form"
	SourceKeyword  = "keyword"
	SourceAdmin    = "admin"
	SourceProvider = "provider"
)

// Channels, ConsentStatuses, Purposes and Sources list the valid values, in
// the order error messages show them.
var (
	Channels        = []string{ChannelEmail, ChannelSMS}
	ConsentStatuses = []string{ConsentOptedIn, ConsentOptedOut, ConsentUnknown}
	Purposes        = []string{PurposeMarketing, PurposeTransactional}
	Sources         = []string{SourceAPI, SourceImport, SourceForm, SourceKeyword, SourceAdmin, SourceProvider}
)

// ConsentEvidence is what proves a consent change: the text the person agreed
// to, the form's URL, the IP it came from, the keyword received.
type ConsentEvidence struct {
	Text    string `json:"text,omitempty"`
	FormURL string `json:"form_url,omitempty"`
	IP      string `json:"ip,omitempty"`
	Keyword string `json:"keyword,omitempty"`
}

// ConsentEntry is one immutable line of the consent ledger. Consent belongs to
// an address (a phone number for SMS, an email address for email), so the
// ledger is keyed by AddressHash; ContactID is empty once the contact was erased.
type ConsentEntry struct {
	ID          int64           `json:"id"`
	ContactID   string          `json:"contact_id,omitempty"`
	AddressHash string          `json:"address_hash"`
	Channel     string          `json:"channel"`
	Purpose     string          `json:"purpose"`
	Status      string          `json:"status"`
	Source      string          `json:"source"`
	Evidence    ConsentEvidence `json:"evidence"`
	OccurredAt  time.Time       `json:"occurred_at"` // when the person consented or withdrew
	RecordedAt  time.Time       `json:"recorded_at"` // when Nudge recorded it
}

// ConsentState is the current consent of one address for a channel and purpose:
// the latest ledger entry's status.
type ConsentState struct {
	Channel   string    `json:"channel"`
	Purpose   string    `json:"purpose"`
	Status    string    `json:"status"`
	Source    string    `json:"source,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	EntryID   int64     `json:"entry_id,omitempty"`
}

// ConsentRecordParams is one consent change to record: for a contact, or,
// when ContactID is empty, for an Address that no contact has yet (a STOP
// from an unknown number). Consent belongs to the address either way, so a
// contact who later gets the address has the state it left.
type ConsentRecordParams struct {
	ContactID string
	// Address is the phone number (E.164) or email address the change is
	// for, used only when ContactID is empty.
	Address    string
	Channel    string
	Purpose    string
	Status     string
	Source     string
	Evidence   ConsentEvidence
	OccurredAt time.Time // zero: now
	// IdempotencyKey, when set, makes the change once-only: a change whose
	// key was recorded before appends nothing and reports Duplicate. A
	// provider that retries an inbound STOP uses its message id.
	IdempotencyKey string
}

// ConsentRecordResult is the outcome of one ConsentRecordParams: the entry
// appended, or Err (an *Error) saying why it was not.
type ConsentRecordResult struct {
	Entry *ConsentEntry
	Err   error
	// Duplicate says the change's IdempotencyKey was recorded before, so
	// nothing was appended (Entry and Err are nil).
	Duplicate bool
}

// ConsentLedgerParams pages the ledger in ID order. ContactID empty: the whole
// ledger (for export).
type ConsentLedgerParams struct {
	ContactID string
	AfterID   int64
	Limit     int // default 100, at most 10000
}

// ConsentStore keeps the consent ledger and the current state derived from it.
type ConsentStore interface {
	// ConsentRecord appends entries to the ledger and updates the current
	// state, each in order, in one transaction. A change that cannot be
	// recorded (unknown contact: ENOTFOUND; the contact has no address for
	// the channel, or CheckConsentChange refuses it: EINVALID/ECONFLICT) is
	// reported in its result; the others are recorded. A change by Address
	// is recorded against the address's hash with no contact; one whose
	// IdempotencyKey was seen before is reported Duplicate.
	ConsentRecord(ctx context.Context, ps []*ConsentRecordParams, now time.Time) ([]ConsentRecordResult, error)
	// ConsentList returns the current consent of the contact's addresses: one
	// state per channel and purpose that has ever been recorded. ENOTFOUND if
	// the contact does not exist.
	ConsentList(ctx context.Context, contactID string) ([]*ConsentState, error)
	// ConsentLedger returns ledger entries in ID order: those of the contact
	// (by contact id or by the hash of its current addresses), or all.
	ConsentLedger(ctx context.Context, p *ConsentLedgerParams) ([]*ConsentEntry, error)
}

// NormalizeAddress returns the form of an address that is hashed: E.164
// phone numbers as they are, email addresses trimmed and lower-cased.
func NormalizeAddress(channel, address string) string {
	if channel == ChannelEmail {
		return strings.ToLower(strings.TrimSpace(address))
	}
	return strings.TrimSpace(address)
}

// AddressHash is the keyed hash (HMAC-SHA256, hex) of a channel address. The
// key is the workspace's secret, so the ledger cannot be reversed by hashing
// every phone number.
func AddressHash(key []byte, channel, address string) string {
	return NewAddressHasher(key).Hash(channel, address)
}

// AddressHasher computes AddressHash with one key for many addresses,
// setting up the HMAC once: the engine's guardrails hash a batch's
// hundreds of contacts. It is not safe for concurrent use.
type AddressHasher struct {
	mac hash.Hash
	buf []byte
}

// NewAddressHasher returns a hasher of addresses with key.
func NewAddressHasher(key []byte) *AddressHasher {
	return &AddressHasher{mac: hmac.New(sha256.New, key)}
}

// Hash is AddressHash of the hasher's key.
func (h *AddressHasher) Hash(channel, address string) string {
	h.mac.Reset()
	h.buf = append(append(append(h.buf[:0], channel...), 0), NormalizeAddress(channel, address)...)
	h.mac.Write(h.buf)
	h.buf = h.mac.Sum(h.buf[:0])
	return hex.EncodeToString(h.buf)
}

// ContactAddress returns the contact's address for a channel, or "".
func ContactAddress(c *Contact, channel string) string {
	switch channel {
	case ChannelEmail:
		return c.Email
	case ChannelSMS:
		return c.Phone
	}
	return ""
}

// CheckConsentChange says whether a change may be recorded over the current
// state (nil: no state yet). An import or an API call cannot opt back in an
// address that opted out by keyword, from the provider or through a form: a
// CRM export saying "opted in" must not undo a STOP. Only the person
// (keyword, form) or an admin can.
func CheckConsentChange(cur *ConsentState, p *ConsentRecordParams) error {
	if cur == nil || cur.Status != ConsentOptedOut || p.Status != ConsentOptedIn {
		return nil
	}
	switch p.Source {
	case SourceKeyword, SourceForm, SourceAdmin:
		return nil
	}
	switch cur.Source {
	case SourceKeyword, SourceProvider, SourceForm:
		return &Error{Code: ECONFLICT, Field: "status", Message: "the " + p.Channel +
			" address opted out (source " + cur.Source + ", " + cur.UpdatedAt.Format(time.RFC3339) +
			"); only the person (keyword, form) or an admin can opt it back in"}
	}
	return nil
}

// ValidateConsentParams checks the enumerated fields of p.
func ValidateConsentParams(p *ConsentRecordParams) error {
	if p.ContactID == "" && p.Address == "" {
		return FieldErrorf("contact_id", "required (or an address, for an address no contact has)")
	}
	if p.ContactID != "" && p.Address != "" {
		return FieldErrorf("address", "give a contact_id or an address, not both")
	}
	for _, c := range []struct {
		f, v  string
		valid []string
	}{
		{"channel", p.Channel, Channels},
		{"purpose", p.Purpose, Purposes},
		{"status", p.Status, ConsentStatuses},
		{"source", p.Source, Sources},
	} {
		if err := OneOf(c.f, c.v, c.valid); err != nil {
			return err
		}
	}
	if p.Address != "" {
		return validAddress(p.Channel, NormalizeAddress(p.Channel, p.Address))
	}
	return nil
}

// validAddress checks the form of a normalized address: E.164 for SMS, a
// local part and a domain for email. It does not say the address exists.
func validAddress(channel, a string) error {
	if channel == ChannelSMS {
		ok := len(a) >= 8 && len(a) <= 16 && a[0] == '+' && a[1] != '0'
		for _, r := range a[1:] {
			ok = ok && r >= '0' && r <= '9'
		}
		if !ok {
			return FieldErrorf("address", "%q is not an E.164 phone number (write it as +15551234567)", a)
		}
		return nil
	}
	if at := strings.LastIndexByte(a, '@'); at < 1 || at == len(a)-1 || strings.ContainsAny(a, " \t\r\n") {
		return FieldErrorf("address", "%q is not an email address", a)
	}
	return nil
}
