package sqlite

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A store from Open checkpoints its WAL on a connection of its own rather
// than on the writer: SQLite's automatic checkpoint runs on the connection
// that commits, after its commit, and took about 2.6 µs of the writer's
// time a transition in a drain of 1,000,000 enrollments. After each of its
// commits the writer wakes a goroutine (checkpointer) that looks at the
// WAL's size in the wal-index header and, past walCheckpointFrames frames
// not yet checkpointed, runs a PASSIVE checkpoint, which neither waits for
// nor blocks the writer and the readers.
//
// The WAL starts again from its beginning only when a write transaction
// begins with every frame checkpointed and no reader reading from it; with
// checkpoints beside a writer that keeps committing, a checkpoint ends
// while the writer adds frames, so that never happens. The writer keeps
// SQLite's automatic checkpoint, at walRestartFrames: it runs right after a
// commit, so the WAL starts again at the next transaction if no reader is
// in it (or at a later one). To leave that checkpoint little to do, the
// checkpointer runs its own more often in the last walCheckpointFrames
// before it. Readers that never all leave the WAL at once would still keep
// it from starting again (as they would with the automatic checkpoint
// alone): past twice walRestartFrames the checkpointer holds the writer
// back before its next transaction (gate) and runs a RESTART checkpoint,
// which waits (up to checkpointBusyTimeout) for the readers to leave the
// WAL, so that the writer's next transaction starts it again. A private store (OpenPrivate) has one
// connection and only the automatic checkpoint.
var (
	walCheckpointFrames uint32 = 10000 // 40 MB of 4 KB pages, as wal_autocheckpoint(10000) did
	walRestartFrames    uint32 = 30000
)

// checkpointer runs the checkpoints of a store from Open.
type checkpointer struct {
	conn *sql.DB
	shm  string // the wal-index file, whose header holds the WAL's frame counts
	// shmFile is shm, opened once by run and kept open until closeShm,
	// which DB.Close calls after every connection of the store is closed.
	// Closing a descriptor of a file drops every POSIX lock the process
	// holds on it (https://sqlite.org/howtocorrupt.html, 2.2), SQLite's
	// shared-memory locks included: opening and closing it on each look,
	// as this did at first, made readers and the writer fail with
	// SQLITE_IOERR_IN_PAGE under load (TestSoakShort).
	shmFile *os.File
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	// holding is set while a RESTART checkpoint holds mu, which the
	// writer then waits for before a transaction.
	holding atomic.Bool
	mu      sync.Mutex
	// passive and restart count the checkpoints run.
	passive, restart atomic.Int64
}

// checkpointBusyTimeout bounds how long a RESTART checkpoint waits for the
// readers, the writer waiting with it.
const checkpointBusyTimeout = time.Second

func newCheckpointer(path string) (*checkpointer, error) {
	// The later busy_timeout is the one the connection keeps.
	conn, err := sql.Open("sqlite", path+common+
		"&_pragma=busy_timeout("+strconv.FormatInt(checkpointBusyTimeout.Milliseconds(), 10)+")")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := oneConnection(conn, path); err != nil {
		return nil, err
	}
	c := &checkpointer{conn: conn, shm: path + "-shm", kick: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{})}
	go c.run()
	return c, nil
}

// wake tells the checkpointer the writer committed; it never blocks. c may
// be nil (a private store).
func (c *checkpointer) wake() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// gate makes the writer wait, before a transaction, for a RESTART
// checkpoint that is running. c may be nil.
func (c *checkpointer) gate() {
	if c != nil && c.holding.Load() {
		c.mu.Lock()
		c.mu.Unlock()
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	var hdr [136]byte
	// restartAt is the WAL's size in frames past which to RESTART: twice
	// walRestartFrames, and walRestartFrames further after a RESTART that
	// a reader kept from ending, so that a long read (an export) holds
	// the writer back once per walRestartFrames, not at every commit.
	restartAt := 2 * walRestartFrames
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		every := walCheckpointFrames
		if c.shmFile == nil {
			if f, err := os.Open(c.shm); err == nil {
				c.shmFile = f
			}
		}
		frames, backfilled, ok := walFrames(c.shmFile, &hdr)
		if frames+walCheckpointFrames >= walRestartFrames {
			every /= 4
		}
		// An error, or SQLITE_BUSY from a RESTART that waited out the busy
		// timeout, leaves the WAL as it is; a later commit tries again.
		switch {
		case ok && frames >= restartAt:
			c.mu.Lock()
			c.holding.Store(true)
			if c.checkpoint("RESTART") {
				c.restart.Add(1)
				restartAt = 2 * walRestartFrames
			} else {
				restartAt = frames + walRestartFrames
			}
			c.holding.Store(false)
			c.mu.Unlock()
		case !ok || frames-backfilled >= every:
			if c.checkpoint("PASSIVE") {
				c.passive.Add(1)
			}
		}
	}
}

// checkpoint runs a checkpoint of a mode and says whether it did all it
// was to do: not if it failed, or stopped short (SQLITE_BUSY, which the
// pragma returns as its busy column).
func (c *checkpointer) checkpoint(mode string) bool {
	var busy, log, done int
	err := c.conn.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done)
	return err == nil && busy == 0
}

// walFrames reads from the wal-index header (https://sqlite.org/walformat.html)
// the frames in the WAL (mxFrame, at byte 16) and those of them checkpointed
// into the database (nBackfill, at byte 96), in native byte order. The
// header is read without SQLite's locks: the counts only decide when to
// checkpoint. ok is false if the file cannot be read. f stays open (see
// checkpointer.shmFile).
func walFrames(f *os.File, hdr *[136]byte) (frames, backfilled uint32, ok bool) {
	if f == nil {
		return 0, 0, false
	}
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, 0, false
	}
	return binary.NativeEndian.Uint32(hdr[16:]), binary.NativeEndian.Uint32(hdr[96:]), true
}

// closeShm closes the wal-index file, once no connection of the store is
// open (see shmFile). c may be nil.
func (c *checkpointer) closeShm() {
	if c != nil && c.shmFile != nil {
		c.shmFile.Close()
		c.shmFile = nil
	}
}

// close stops the checkpointer and closes its connection. c may be nil.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	var err error
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		err = c.conn.Close()
	})
	return err
}
