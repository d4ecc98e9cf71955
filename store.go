package nudge

import "context"

// Store is the storage seam: everything Nudge keeps, behind one interface that
// store/sqlite and store/postgres implement and store/storetest checks.
type Store interface {
	ContactStore
	EventStore
	ConsentStore
	APIKeyStore
	JourneyStore
	EngineStore
	PolicyStore
	PolicyFactStore
	DeliveryStore
	ProviderStore
	LinkStore
	ReportStore
	UserStore
	WebhookStore

	// Migrate brings the schema up to date. A database whose schema is newer
	// than this binary knows is refused with an error saying so.
	Migrate(ctx context.Context) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
