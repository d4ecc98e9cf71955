package postgres

import "context"

// Exec runs sql on the store's pool, for tests that need to set up states
// the Store methods cannot make (a schema from the future).
func (db *DB) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := db.pool.Exec(ctx, sql, args...)
	return err
}
