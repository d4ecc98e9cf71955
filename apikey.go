package nudge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"time"
)

// API key roles. An ingest key can only send identify, track and batch; a read
// key can read but not write; an admin key can do everything.
const (
	RoleAdmin  = "admin"
	RoleIngest = "ingest"
	RoleRead   = "read"
)

// Roles lists the valid roles.
var Roles = []string{RoleAdmin, RoleIngest, RoleRead}

// APIKey is a stored API key. The secret part is never stored, only its
// SHA-256 (the secret has 128 random bits, so a fast hash is enough).
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Hash      []byte     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

const apiKeyPrefix = "nk_"

// NewAPIKey makes a key with a fresh random id and secret. It returns the key
// to store and the token to give the user once: "nk_<id>_<secret>".
func NewAPIKey(role, name string, now time.Time) (*APIKey, string) {
	id := randomHex(6)
	secret := randomHex(16) // 128 bits
	sum := sha256.Sum256([]byte(secret))
	k := &APIKey{ID: id, Name: name, Role: role, Hash: sum[:], CreatedAt: now}
	return k, apiKeyPrefix + id + "_" + secret
}

// ParseAPIToken splits a token into its key id and secret.
func ParseAPIToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, apiKeyPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	return id, secret, ok && id != "" && secret != ""
}

// Verify reports, in constant time, whether secret is this key's secret and
// the key is not revoked.
func (k *APIKey) Verify(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], k.Hash) == 1 && k.RevokedAt == nil
}

// Allows reports whether the key's role may use a route needing role need.
func (k *APIKey) Allows(need string) bool {
	switch k.Role {
	case RoleAdmin:
		return true
	case RoleRead:
		return need == RoleRead
	case RoleIngest:
		return need == RoleIngest
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("nudge: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// APIKeyStore keeps API keys.
type APIKeyStore interface {
	// APIKeyCreate stores a new key.
	APIKeyCreate(ctx context.Context, k *APIKey) error
	// APIKeyGet returns a key by id (revoked keys too), or ENOTFOUND.
	APIKeyGet(ctx context.Context, id string) (*APIKey, error)
	// APIKeyList returns all keys, oldest first.
	APIKeyList(ctx context.Context) ([]*APIKey, error)
	// APIKeyRevoke marks a key revoked; ENOTFOUND if it does not exist.
	APIKeyRevoke(ctx context.Context, id string, now time.Time) error
}
