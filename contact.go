package nudge

import (
	"context"
	"maps"
	"time"
)

// Lifecycle stages a CRM commonly uses. Other values are accepted: CRMs differ.
const (
	StageSubscriber  = "subscriber"
	StageLead        = "lead"
	StageMQL         = "marketingqualifiedlead"
	StageSQL         = "salesqualifiedlead"
	StageOpportunity = "opportunity"
	StageCustomer    = "customer"
)

// Contact is a person in the CRM. Well-known fields are typed and validated
// (see ingest.ContactNormalizer); everything else lives in Attributes.
type Contact struct {
	ID             string         `json:"id"`
	Email          string         `json:"email,omitempty"`
	Phone          string         `json:"phone,omitempty"`    // E.164
	Timezone       string         `json:"timezone,omitempty"` // IANA name
	LifecycleStage string         `json:"lifecycle_stage,omitempty"`
	JourneyStage   string         `json:"journey_stage,omitempty"`
	IsCustomer     bool           `json:"is_customer"`
	Attributes     map[string]any `json:"attributes"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

// ContactPatch is a partial update of a contact: nil fields are left as they
// are; a pointer to "" clears a field. In Attributes, a nil value deletes the
// attribute. Identify traits, PATCH bodies and import rows all become patches,
// so they merge the same way.
type ContactPatch struct {
	ID             string
	Email          *string
	Phone          *string
	Timezone       *string
	LifecycleStage *string
	JourneyStage   *string
	IsCustomer     *bool
	Attributes     map[string]any
}

// Apply merges p into c. It does not touch ID or the timestamps.
func (p *ContactPatch) Apply(c *Contact) {
	setIf := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	setIf(&c.Email, p.Email)
	setIf(&c.Phone, p.Phone)
	setIf(&c.Timezone, p.Timezone)
	setIf(&c.LifecycleStage, p.LifecycleStage)
	setIf(&c.JourneyStage, p.JourneyStage)
	if p.IsCustomer != nil {
		c.IsCustomer = *p.IsCustomer
	}
	if len(p.Attributes) > 0 && c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	for k, v := range p.Attributes {
		if v == nil {
			delete(c.Attributes, k)
		} else {
			c.Attributes[k] = v
		}
	}
}

// Clone returns a deep-enough copy of c (the attribute map is copied).
func (c *Contact) Clone() *Contact {
	cc := *c
	cc.Attributes = maps.Clone(c.Attributes)
	return &cc
}

// ContactMergeResult tells what ContactMerge did with one patch.
type ContactMergeResult struct {
	Contact *Contact
	Created bool // false: an existing contact was updated
}

// ContactListParams filters and pages a contact list. Results are ordered by
// ID; Cursor is the opaque NextCursor of the previous page.
type ContactListParams struct {
	Email          string
	Phone          string
	LifecycleStage string
	JourneyStage   string
	IsCustomer     *bool
	// Attributes filters on attribute equality, comparing the attribute's
	// JSON scalar as text ("true", "42", "pro").
	Attributes   map[string]string
	UpdatedAfter time.Time
	Cursor       string
	Limit        int // default 50, at most 1000
}

// ContactPage is one page of a contact list.
type ContactPage struct {
	Contacts   []*Contact `json:"contacts"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// ContactStore keeps contacts.
type ContactStore interface {
	// ContactGet returns the contact, or ENOTFOUND.
	ContactGet(ctx context.Context, id string) (*Contact, error)
	// ContactGetMany returns the contacts of ids that exist, by id; ids that
	// do not exist are absent from the map (no error).
	ContactGetMany(ctx context.Context, ids []string) (map[string]*Contact, error)
	// ContactList returns a page of contacts matching the filters.
	ContactList(ctx context.Context, p *ContactListParams) (*ContactPage, error)
	// ContactPut creates or replaces a contact wholly (PUT semantics): fields
	// and attributes not in c are cleared. It returns the stored contact and
	// whether it was created. Like ContactMerge, it leaves an inbox item when
	// the contact was created or changed.
	ContactPut(ctx context.Context, c *Contact, now time.Time) (*Contact, bool, error)
	// ContactMerge applies patches in order in one transaction, creating
	// contacts that do not exist. Every patch needs an ID. Each contact
	// created or changed (a field or attribute differs) is left in the
	// engine's inbox (an InboxItem without Event), in the same transaction,
	// so journeys see the change. UpdatedAt moves even when nothing changed.
	ContactMerge(ctx context.Context, patches []*ContactPatch, now time.Time) ([]ContactMergeResult, error)
	// ContactErase deletes a contact and its events, enrollments, decisions,
	// messages and inbox items (a privacy request). Its
	// consent ledger entries remain, keyed by address hash only: the contact
	// id and evidence IP are removed from them. Its tracked links keep
	// redirecting but are tied to nobody. ENOTFOUND if it does not exist.
	ContactErase(ctx context.Context, id string, now time.Time) error
}
