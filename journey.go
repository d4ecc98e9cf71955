package nudge

import (
	"context"
	"time"
)

// Journey statuses. A paused journey takes no new entries and its waiting
// enrollments hold; an archived one is paused for good and hidden from lists.
const (
	JourneyActive   = "active"
	JourneyPaused   = "paused"
	JourneyArchived = "archived"
)

// Journey is a published journey: its identity, status and latest version.
// The definition itself is a JourneyVersion (parsed by package journey).
type Journey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Version   int64     `json:"version"` // the latest published version
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// JourneyVersion is one immutable published definition of a journey.
type JourneyVersion struct {
	JourneyID   string    `json:"journey_id"`
	Version     int64     `json:"version"` // 1, 2, …
	Source      []byte    `json:"-"`       // the YAML file as published
	Hash        string    `json:"hash"`    // sha256 of Source, hex
	PublishedAt time.Time `json:"published_at"`
}

// JourneyPublishParams is a definition to publish.
type JourneyPublishParams struct {
	ID     string
	Name   string
	Source []byte
	Hash   string
}

// JourneyStore keeps journeys and their versions.
type JourneyStore interface {
	// JourneyPublish stores Source as the journey's next version and returns
	// it with created true. If Source's hash equals the latest version's, no
	// version is made and the latest is returned with created false. A new
	// journey starts active; publishing keeps a paused journey paused.
	// Publishing an archived journey makes it active again.
	JourneyPublish(ctx context.Context, p *JourneyPublishParams, now time.Time) (*JourneyVersion, bool, error)
	// JourneyGet returns a journey, or ENOTFOUND.
	JourneyGet(ctx context.Context, id string) (*Journey, error)
	// JourneyList returns all journeys, ordered by ID.
	JourneyList(ctx context.Context) ([]*Journey, error)
	// JourneyVersionGet returns one version with its Source, or ENOTFOUND.
	JourneyVersionGet(ctx context.Context, id string, version int64) (*JourneyVersion, error)
	// JourneyVersionList returns a journey's versions, oldest first, without Source.
	JourneyVersionList(ctx context.Context, id string) ([]*JourneyVersion, error)
	// JourneySetStatus pauses, resumes (active) or archives a journey; ENOTFOUND if unknown.
	JourneySetStatus(ctx context.Context, id, status string, now time.Time) error
}
