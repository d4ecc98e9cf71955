package postgres

import "context"

// Exec runs sql on the store's pool, for tests that need to set up states
// the Store methods cannot make (a schema from the future).
func (db *DB) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := db.pool.Exec(ctx, sql, args...)
	return err
}

// BackendPIDs holds n of the pool's sessions at once and returns their
// server process ids; the sessions go back to the pool, idle.
func (db *DB) BackendPIDs(ctx context.Context, n int) ([]int32, error) {
	var pids []int32
	for range n {
		c, err := db.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Release()
		var pid int32
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			return nil, err
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
