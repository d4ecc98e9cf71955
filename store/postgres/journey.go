package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

var _ nudge.JourneyStore = (*DB)(nil)

const journeyColumns = `id, name, status, version, created_at, updated_at`

func scanJourney(row pgx.Row) (*nudge.Journey, error) {
	var j nudge.Journey
	if err := row.Scan(&j.ID, &j.Name, &j.Status, &j.Version, &j.CreatedAt, &j.UpdatedAt); err != nil {
		return nil, err
	}
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	return &j, nil
}

func journeyNotFound(id string) error {
	return nudge.Errorf(nudge.ENOTFOUND, "journey %q not found", id)
}

// JourneyPublish stores p.Source as the journey's next version, unless it is
// the latest version's source. p.Hash may be empty: the store computes the
// sha256 of Source and refuses a Hash that differs from it. The journey's
// name is the one of its latest version. Publishing an archived journey
// makes it active again, even when no version is made. The journey row is
// locked (created first if new) while the version number is chosen, so
// concurrent publishes of one journey number their versions in turn.
func (db *DB) JourneyPublish(ctx context.Context, p *nudge.JourneyPublishParams, now time.Time) (*nudge.JourneyVersion, bool, error) {
	if p == nil || p.ID == "" {
		return nil, false, nudge.FieldErrorf("id", "required")
	}
	if len(p.Source) == 0 {
		return nil, false, nudge.FieldErrorf("source", "required")
	}
	sum := sha256.Sum256(p.Source)
	hash := hex.EncodeToString(sum[:])
	if p.Hash != "" && p.Hash != hash {
		return nil, false, nudge.FieldErrorf("hash", "%s is not the sha256 of the source (%s)", p.Hash, hash)
	}
	now = utc(now)
	var (
		v       *nudge.JourneyVersion
		created bool
	)
	err := db.inTx(ctx, "journey publish", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO journeys (id, name, status, version, created_at, updated_at)
			VALUES ($1, $2, 'active', 0, $3, $3)
			ON CONFLICT (id) DO NOTHING`, p.ID, p.Name, now); err != nil {
			return err
		}
		var latest int64
		if err := tx.QueryRow(ctx, `SELECT version FROM journeys WHERE id = $1 FOR UPDATE`, p.ID).Scan(&latest); err != nil {
			return err
		}
		if latest > 0 {
			cur, err := scanVersion(tx.QueryRow(ctx, `SELECT `+versionColumns+`, source FROM journey_versions
				WHERE journey_id = $1 AND version = $2`, p.ID, latest), true)
			if err != nil {
				return err
			}
			if cur.Hash == hash {
				v, created = cur, false
				_, err := tx.Exec(ctx, `UPDATE journeys SET status = 'active', updated_at = $2
					WHERE id = $1 AND status = 'archived'`, p.ID, now)
				return err
			}
		}
		v = &nudge.JourneyVersion{JourneyID: p.ID, Version: latest + 1, Source: p.Source, Hash: hash, PublishedAt: now}
		created = true
		if _, err := tx.Exec(ctx, `INSERT INTO journey_versions (journey_id, version, source, hash, published_at)
			VALUES ($1, $2, $3, $4, $5)`, v.JourneyID, v.Version, v.Source, v.Hash, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE journeys SET version = $2, name = $3, updated_at = $4,
				status = CASE WHEN status = 'archived' THEN 'active' ELSE status END
			WHERE id = $1`, p.ID, v.Version, p.Name, now)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return v, created, nil
}

// JourneyGet returns a journey, or ENOTFOUND.
func (db *DB) JourneyGet(ctx context.Context, id string) (*nudge.Journey, error) {
	j, err := scanJourney(db.pool.QueryRow(ctx, `SELECT `+journeyColumns+` FROM journeys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("journey get: %w", journeyNotFound(id))
	}
	if err != nil {
		return nil, wrap("journey get", err)
	}
	return j, nil
}

// JourneyList returns all journeys, ordered by ID.
func (db *DB) JourneyList(ctx context.Context) ([]*nudge.Journey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+journeyColumns+` FROM journeys ORDER BY id`)
	if err != nil {
		return nil, wrap("journey list", err)
	}
	js, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Journey, error) { return scanJourney(r) })
	if err != nil {
		return nil, wrap("journey list", err)
	}
	if js == nil {
		js = []*nudge.Journey{}
	}
	return js, nil
}

const versionColumns = `journey_id, version, hash, published_at`

func scanVersion(row pgx.Row, withSource bool) (*nudge.JourneyVersion, error) {
	var v nudge.JourneyVersion
	dst := []any{&v.JourneyID, &v.Version, &v.Hash, &v.PublishedAt}
	if withSource {
		dst = append(dst, &v.Source)
	}
	if err := row.Scan(dst...); err != nil {
		return nil, err
	}
	v.PublishedAt = v.PublishedAt.UTC()
	return &v, nil
}

// JourneyVersionGet returns one version with its Source, or ENOTFOUND.
func (db *DB) JourneyVersionGet(ctx context.Context, id string, version int64) (*nudge.JourneyVersion, error) {
	v, err := scanVersion(db.pool.QueryRow(ctx, `SELECT `+versionColumns+`, source FROM journey_versions
		WHERE journey_id = $1 AND version = $2`, id, version), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("journey version get: %w", nudge.Errorf(nudge.ENOTFOUND, "journey %q has no version %d", id, version))
	}
	if err != nil {
		return nil, wrap("journey version get", err)
	}
	return v, nil
}

// JourneyVersionList returns a journey's versions, oldest first, without Source.
func (db *DB) JourneyVersionList(ctx context.Context, id string) ([]*nudge.JourneyVersion, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+versionColumns+` FROM journey_versions WHERE journey_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, wrap("journey version list", err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.JourneyVersion, error) { return scanVersion(r, false) })
	if err != nil {
		return nil, wrap("journey version list", err)
	}
	if vs == nil {
		vs = []*nudge.JourneyVersion{}
	}
	return vs, nil
}

// JourneySetStatus pauses, resumes or archives a journey.
func (db *DB) JourneySetStatus(ctx context.Context, id, status string, now time.Time) error {
	switch status {
	case nudge.JourneyActive, nudge.JourneyPaused, nudge.JourneyArchived:
	default:
		return nudge.FieldErrorf("status", "%q is not one of active, paused, archived", status)
	}
	tag, err := db.pool.Exec(ctx, `UPDATE journeys SET status = $2, updated_at = $3 WHERE id = $1`, id, status, utc(now))
	if err != nil {
		return wrap("journey set status", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("journey set status: %w", journeyNotFound(id))
	}
	return nil
}
