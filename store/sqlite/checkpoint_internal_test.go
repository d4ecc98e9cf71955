package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Under a writer that does not stop and readers that keep reading, the WAL
// stays bounded, and the checkpointer, not the writer, checkpoints most of
// it.
func TestWALStaysBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nudge.db")
	defer func(every, limit uint32) { walCheckpointFrames, walRestartFrames = every, limit }(walCheckpointFrames, walRestartFrames)
	walCheckpointFrames, walRestartFrames = 100, 400
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := db.write.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != int(walRestartFrames) {
		t.Errorf("the writer's wal_autocheckpoint = %d, want %d", auto, walRestartFrames)
	}
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE filler (b BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM filler`).Scan(&n); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	const commits = 6000
	blob := make([]byte, 3000)
	var hdr [136]byte
	most := uint32(0)
	var shm *os.File // open until the end: closing it drops the store's locks (see checkpointer.shmFile)
	defer func() {
		if shm != nil {
			db.Close()
			shm.Close()
		}
	}()
	for i := range commits {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO filler (b) VALUES (?)`, blob)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if shm == nil {
			shm, _ = os.Open(path + "-shm")
		}
		if frames, _, ok := walFrames(shm, &hdr); ok {
			most = max(most, frames)
		} else if i > 0 {
			t.Fatal("the wal-index header cannot be read")
		}
	}
	close(stop)
	wg.Wait()

	// The commits write about 18,000 frames, and with the readers always in
	// the WAL it would not start again without the RESTART checkpoints.
	// The checkpointer runs beside the writer, which goes on committing
	// while a PASSIVE checkpoint runs and while a RESTART waits for the
	// readers (up to a second), hence the margin: runs here peak at
	// 1,700-2,800 frames, and one on a machine at load 10 reached 4,278.
	if most > 20*walRestartFrames {
		t.Errorf("the WAL reached %d frames, want at most %d", most, 20*walRestartFrames)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(20*walRestartFrames) * (4096 + 24); fi.Size() > max {
		t.Errorf("WAL file %d bytes, want at most %d", fi.Size(), max)
	}
	if db.ckpt.passive.Load() == 0 {
		t.Error("the checkpointer ran no checkpoint")
	}
	t.Logf("most frames %d, %d passive and %d restart checkpoints", most, db.ckpt.passive.Load(), db.ckpt.restart.Load())
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM filler`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != commits {
		t.Errorf("%d rows, want %d", n, commits)
	}
}
