package nudge

import (
	"context"
	"time"
)

// PolicyVersion is one immutable published policy file (package policy
// parses it). Every decision records the policy version it used.
type PolicyVersion struct {
	Version     int64     `json:"version"`
	Source      []byte    `json:"-"`
	Hash        string    `json:"hash"` // sha256 of Source, hex
	PublishedAt time.Time `json:"published_at"`
}

// PolicyStore keeps the workspace policy's versions.
type PolicyStore interface {
	// PolicyPublish stores Source as the next version and returns it with
	// created true; if its hash equals the latest version's, it returns the
	// latest with created false. An empty hash is computed.
	PolicyPublish(ctx context.Context, source []byte, hash string, now time.Time) (*PolicyVersion, bool, error)
	// PolicyGet returns a version with its Source; version 0 means the
	// latest. ENOTFOUND if there is none.
	PolicyGet(ctx context.Context, version int64) (*PolicyVersion, error)
	// PolicyVersionList returns all versions, oldest first, without Source.
	PolicyVersionList(ctx context.Context) ([]*PolicyVersion, error)
}

// Suppression reasons: why an address must not be messaged.
const (
	SuppressDoNotContact   = "do_not_contact"   // the workspace's list
	SuppressHardBounce     = "hard_bounce"      // email
	SuppressComplaint      = "complaint"        // email spam complaint
	SuppressProviderOptOut = "provider_opt_out" // SMS: the provider reports the number opted out (Twilio 21610)
	SuppressUnreachable    = "unreachable"      // SMS: the number cannot receive messages
)

// SuppressionReasons lists the valid reasons.
var SuppressionReasons = []string{SuppressDoNotContact, SuppressHardBounce, SuppressComplaint, SuppressProviderOptOut, SuppressUnreachable}

// Suppression is one address on the suppression list. Like consent, it is
// keyed by the address's keyed hash, so it outlives an erased contact; the
// address itself is kept only masked, for people to recognise it.
type Suppression struct {
	ID            int64     `json:"id"`
	Channel       string    `json:"channel"`
	AddressHash   string    `json:"address_hash"`
	AddressMasked string    `json:"address_masked"` // "+1415•••2671", "ja•••@example.com"
	Reason        string    `json:"reason"`
	Source        string    `json:"source"` // api, import, admin, provider
	Note          string    `json:"note,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// SuppressionAddParams is an address to suppress. Address is an E.164 phone
// number (sms) or an email address (email).
type SuppressionAddParams struct {
	Channel string
	Address string
	Reason  string
	Source  string
	Note    string
}

// SuppressionListParams pages the suppression list by ID.
type SuppressionListParams struct {
	Channel string
	AfterID int64
	Limit   int // default 100, at most 10000
}

// PolicyFactStore reads, in bulk, the facts the policy needs to judge many
// sends at once: one query per kind of fact for a whole batch, never one per
// message.
type PolicyFactStore interface {
	// SuppressionAdd adds addresses (an address already suppressed for the
	// same reason is left as it is) and returns the entries.
	SuppressionAdd(ctx context.Context, ps []*SuppressionAddParams, now time.Time) ([]*Suppression, error)
	// SuppressionRemove removes an address's suppressions for a channel;
	// ENOTFOUND if it had none.
	SuppressionRemove(ctx context.Context, channel, address string) error
	// SuppressionList pages the list.
	SuppressionList(ctx context.Context, p *SuppressionListParams) ([]*Suppression, error)
	// SuppressionsFor returns, by contact id, the suppressions of the given
	// contacts' current phone numbers and email addresses.
	SuppressionsFor(ctx context.Context, contacts []*Contact) (map[string][]*Suppression, error)
	// ConsentListMany returns, by contact id, the current consent of each
	// contact's addresses (as ConsentList, for many contacts at once).
	ConsentListMany(ctx context.Context, contactIDs []string) (map[string][]*ConsentState, error)
	// MessageRecent returns, by contact id, the messages of those contacts
	// created at or after since that are queued, sending, sent, delivered or
	// outcome_unknown (what counts toward frequency caps: a message whose
	// outcome is unknown may have reached the person), oldest first. They
	// come without what caps do not read: IdempotencyKey, Details,
	// ProviderID, Attempts and Error are left empty.
	MessageRecent(ctx context.Context, contactIDs []string, since time.Time) (map[string][]*Message, error)
}
