package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync/atomic"

	msqlite "modernc.org/sqlite"
)

// A private store's transactions are savepoints in one SQLite transaction
// that stays open from the store's first write transaction until it is
// closed. Releasing a savepoint writes nothing to the file: the pages a
// transaction changed stay in the page cache (they go to the file when the
// cache spills them, or at the commit on Close), where a real commit wrote
// every one of them and ended the pager's transaction. Rolling a savepoint
// back undoes its changes as a ROLLBACK would, and the only connection sees
// everything released before, as it would see everything committed.
//
// SQLite rolls the whole transaction back itself on some errors (an
// interrupted write, a full disk, no memory): every change since the store
// opened is then gone, and the store says so on every later transaction.

// errPrivateLost is the error of every transaction after the outer one was
// rolled back.
var errPrivateLost = errors.New("the private store's transaction was rolled back by SQLite (interrupted, disk full or out of memory): its data since it was opened is lost")

// privateConnector opens the connection of a private store.
type privateConnector struct {
	driver.Connector // modernc.org/sqlite's, for the DSN
	inbox            *memInbox
}

func (c privateConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	full, ok := conn.(fullConn)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlite: the driver's connection lacks an interface the private store needs")
	}
	p := &privateConn{fullConn: full, inbox: c.inbox}
	if h, ok := conn.(interface {
		RegisterRollbackHook(msqlite.RollbackHookFn)
	}); ok {
		// Called for a whole transaction's rollback, not a savepoint's.
		h.RegisterRollbackHook(func() { p.lost.Store(true) })
	}
	return p, nil
}

// fullConn is what every connection of modernc.org/sqlite implements and
// database/sql uses.
type fullConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// privateConn is a private store's connection: the driver's, whose
// transactions are savepoints.
type privateConn struct {
	fullConn
	open bool        // the outer transaction is open (database/sql uses a connection from one goroutine at a time)
	lost atomic.Bool // SQLite rolled the outer transaction back

	inbox *memInbox // the store's, whose staged changes a savepoint's end applies or drops
}

// Unwrap returns the driver's connection (modernc.org/sqlite's Limit looks for it).
func (c *privateConn) Unwrap() driver.Conn { return c.fullConn }

func (c *privateConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *privateConn) BeginTx(ctx context.Context, _ driver.TxOptions) (driver.Tx, error) {
	if c.lost.Load() {
		return nil, errPrivateLost
	}
	if !c.open {
		if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`, nil); err != nil {
			return nil, err
		}
		c.open = true
	}
	if _, err := c.ExecContext(ctx, `SAVEPOINT tx`, nil); err != nil {
		return nil, err
	}
	return savepoint{c}, nil
}

// Close commits the outer transaction, so that a store closed normally
// keeps its data, and closes the connection.
func (c *privateConn) Close() error {
	var err error
	if c.open && !c.lost.Load() {
		_, err = c.ExecContext(context.Background(), `COMMIT`, nil)
	}
	return errors.Join(err, c.fullConn.Close())
}

// savepoint is a private store's transaction.
type savepoint struct{ c *privateConn }

func (s savepoint) Commit() error {
	if s.c.lost.Load() {
		s.c.inbox.end(false)
		return errPrivateLost
	}
	_, err := s.c.ExecContext(context.Background(), `RELEASE tx`, nil)
	s.c.inbox.end(err == nil)
	return err
}

func (s savepoint) Rollback() error {
	s.c.inbox.end(false)
	if s.c.lost.Load() {
		return errPrivateLost
	}
	if _, err := s.c.ExecContext(context.Background(), `ROLLBACK TO tx`, nil); err != nil {
		return err
	}
	_, err := s.c.ExecContext(context.Background(), `RELEASE tx`, nil)
	return err
}
