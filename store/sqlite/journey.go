package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nudge/nudge"
)

var _ nudge.JourneyStore = (*DB)(nil)

// JourneyPublish stores p.Source as the journey's next version, unless it is
// the latest version's source. p.Hash may be empty: the store computes the
// sha256 of Source and refuses a Hash that differs from it. The journey's
// name is the one of its latest version. Publishing an archived journey
// makes it active again, even when no version is made.
func (db *DB) JourneyPublish(ctx context.Context, p *nudge.JourneyPublishParams, now time.Time) (*nudge.JourneyVersion, bool, error) {
	switch {
	case p == nil || p.ID == "":
		return nil, false, nudge.FieldErrorf("id", "required")
	case len(p.Source) == 0:
		return nil, false, nudge.FieldErrorf("source", "required")
	}
	sum := sha256.Sum256(p.Source)
	hash := hex.EncodeToString(sum[:])
	if p.Hash != "" && p.Hash != hash {
		return nil, false, nudge.FieldErrorf("hash", "%s is not the sha256 of the source (%s)", p.Hash, hash)
	}
	var (
		v       *nudge.JourneyVersion
		created bool
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			status string
			latest int64
		)
		err := tx.QueryRowContext(ctx, `SELECT status, version FROM journeys WHERE id = ?`, p.ID).Scan(&status, &latest)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO journeys (id, name, status, version, created_at, updated_at)
				VALUES (?, ?, 'active', 1, ?, ?)`, p.ID, p.Name, micros(now), micros(now)); err != nil {
				return err
			}
			v, created = newVersion(p, 1, hash, now), true
			return insertVersion(ctx, tx, v)
		}
		if err != nil {
			return err
		}
		if v, err = getVersion(ctx, tx, p.ID, latest); err != nil {
			return err
		}
		if v.Hash == hash {
			if status == nudge.JourneyArchived {
				_, err = tx.ExecContext(ctx, `UPDATE journeys SET status = 'active', updated_at = ? WHERE id = ?`,
					micros(now), p.ID)
			}
			return err
		}
		v, created = newVersion(p, latest+1, hash, now), true
		if err := insertVersion(ctx, tx, v); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE journeys SET name = ?, version = ?, updated_at = ?,
			status = CASE status WHEN 'archived' THEN 'active' ELSE status END
			WHERE id = ?`, p.Name, v.Version, micros(now), p.ID)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: journey publish: %w", err)
	}
	return v, created, nil
}

func newVersion(p *nudge.JourneyPublishParams, version int64, hash string, now time.Time) *nudge.JourneyVersion {
	return &nudge.JourneyVersion{JourneyID: p.ID, Version: version, Source: append([]byte(nil), p.Source...),
		Hash: hash, PublishedAt: fromMicros(micros(now))}
}

func insertVersion(ctx context.Context, tx *sql.Tx, v *nudge.JourneyVersion) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO journey_versions (journey_id, version, source, hash, published_at)
		VALUES (?, ?, ?, ?, ?)`, v.JourneyID, v.Version, v.Source, v.Hash, micros(v.PublishedAt))
	return err
}

func getVersion(ctx context.Context, q querier, id string, version int64) (*nudge.JourneyVersion, error) {
	v := &nudge.JourneyVersion{JourneyID: id, Version: version}
	var at int64
	err := q.QueryRowContext(ctx, `SELECT source, hash, published_at FROM journey_versions
		WHERE journey_id = ? AND version = ?`, id, version).Scan(&v.Source, &v.Hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "journey %q has no version %d", id, version)
	}
	if err != nil {
		return nil, err
	}
	v.PublishedAt = fromMicros(at)
	return v, nil
}

const journeyColumns = `id, name, status, version, created_at, updated_at`

func scanJourney(s scanner) (*nudge.Journey, error) {
	var (
		j                nudge.Journey
		created, updated int64
	)
	if err := s.Scan(&j.ID, &j.Name, &j.Status, &j.Version, &created, &updated); err != nil {
		return nil, err
	}
	j.CreatedAt, j.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &j, nil
}

// JourneyGet returns a journey, or ENOTFOUND.
func (db *DB) JourneyGet(ctx context.Context, id string) (*nudge.Journey, error) {
	j, err := scanJourney(db.read.QueryRowContext(ctx, `SELECT `+journeyColumns+` FROM journeys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = nudge.Errorf(nudge.ENOTFOUND, "journey %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: journey get: %w", err)
	}
	return j, nil
}

// JourneyList returns all journeys, archived ones included, by id.
func (db *DB) JourneyList(ctx context.Context) ([]*nudge.Journey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+journeyColumns+` FROM journeys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: journey list: %w", err)
	}
	defer rows.Close()
	js := []*nudge.Journey{}
	for rows.Next() {
		j, err := scanJourney(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: journey list: %w", err)
		}
		js = append(js, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: journey list: %w", err)
	}
	return js, nil
}

// JourneyVersionGet returns one version with its Source, or ENOTFOUND.
func (db *DB) JourneyVersionGet(ctx context.Context, id string, version int64) (*nudge.JourneyVersion, error) {
	v, err := getVersion(ctx, db.read, id, version)
	if err != nil {
		return nil, fmt.Errorf("sqlite: journey version get: %w", err)
	}
	return v, nil
}

// JourneyVersionList returns a journey's versions, oldest first, without
// Source; none for an unknown journey.
func (db *DB) JourneyVersionList(ctx context.Context, id string) ([]*nudge.JourneyVersion, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT version, hash, published_at FROM journey_versions
		WHERE journey_id = ? ORDER BY version`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: journey version list: %w", err)
	}
	defer rows.Close()
	vs := []*nudge.JourneyVersion{}
	for rows.Next() {
		v := &nudge.JourneyVersion{JourneyID: id}
		var at int64
		if err := rows.Scan(&v.Version, &v.Hash, &at); err != nil {
			return nil, fmt.Errorf("sqlite: journey version list: %w", err)
		}
		v.PublishedAt = fromMicros(at)
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: journey version list: %w", err)
	}
	return vs, nil
}

// JourneySetStatus sets a journey's status: EINVALID for a status other
// than active, paused and archived; ENOTFOUND for an unknown journey.
func (db *DB) JourneySetStatus(ctx context.Context, id, status string, now time.Time) error {
	switch status {
	case nudge.JourneyActive, nudge.JourneyPaused, nudge.JourneyArchived:
	default:
		return nudge.FieldErrorf("status", "%q is not one of active, paused, archived", status)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE journeys SET status = ?, updated_at = ? WHERE id = ?`,
			status, micros(now), id)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nudge.Errorf(nudge.ENOTFOUND, "journey %q not found", id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: journey set status: %w", err)
	}
	return nil
}
