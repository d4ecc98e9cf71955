package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// keyCache remembers verified API keys for a short time, keyed by the SHA-256
// of the whole token, so that ingest does not read the database on every call.
// A key revoked through this server is dropped at once; one revoked elsewhere
// (another node, the CLI) stops working within the TTL.
type keyCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[[32]byte]keyCacheEntry
}

type keyCacheEntry struct {
	key     *nudge.APIKey
	expires time.Time
}

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, max: 10000, entries: map[[32]byte]keyCacheEntry{}}
}

func (c *keyCache) get(sum [32]byte, now time.Time) *nudge.APIKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sum]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		delete(c.entries, sum)
		return nil
	}
	return e.key
}

func (c *keyCache) put(sum [32]byte, k *nudge.APIKey, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Only live tokens get here, so a full cache is rare; starting over
		// is simpler than an LRU and costs one lookup per token.
		clear(c.entries)
	}
	c.entries[sum] = keyCacheEntry{key: k, expires: now.Add(c.ttl)}
}

// forget drops every cached token of the key id.
func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sum, e := range c.entries {
		if e.key.ID == id {
			delete(c.entries, sum)
		}
	}
}

// requestToken returns the API token of r: a Bearer token, or the Basic-auth
// username with an empty password (how Segment sends its write key).
func requestToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest)
	}
	if user, _, ok := r.BasicAuth(); ok {
		return user
	}
	return ""
}

var errNoKey = &nudge.Error{Code: nudge.EUNAUTHORIZED,
	Message: "an API key is required: send it as a Bearer token or as the Basic-auth username"}

var errBadKey = &nudge.Error{Code: nudge.EUNAUTHORIZED, Message: "the API key is not valid or was revoked"}

// authenticate returns the key of r's token.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (*nudge.APIKey, error) {
	token := requestToken(r)
	if token == "" {
		return nil, errNoKey
	}
	now := s.clock.Now()
	sum := sha256.Sum256([]byte(token))
	if k := s.keys.get(sum, now); k != nil {
		return k, nil
	}
	id, secret, ok := nudge.ParseAPIToken(token)
	if !ok {
		return nil, errBadKey
	}
	k, err := s.store.APIKeyGet(ctx, id)
	if err != nil {
		if errors.Is(err, nudge.ErrNotFound) || nudge.ErrorCode(err) == nudge.ENOTFOUND {
			return nil, errBadKey
		}
		return nil, err
	}
	if !k.Verify(secret) {
		return nil, errBadKey
	}
	s.keys.put(sum, k, now)
	return k, nil
}

type keyContextKey struct{}

// requestKey returns the API key that authenticated r.
func requestKey(r *http.Request) *nudge.APIKey {
	k, _ := r.Context().Value(keyContextKey{}).(*nudge.APIKey)
	return k
}

// requireRole wraps h so that it runs only for a key whose role allows need.
// An empty need accepts any valid key.
func (s *Server) requireRole(need string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, err := s.authenticate(r.Context(), r)
		if err != nil {
			if nudge.ErrorCode(err) == nudge.EUNAUTHORIZED {
				w.Header().Set("WWW-Authenticate", `Bearer realm="nudge", Basic realm="nudge"`)
			}
			s.fail(w, r, err)
			return
		}
		if need != "" && !k.Allows(need) {
			s.fail(w, r, nudge.Errorf(nudge.EFORBIDDEN,
				"this API key has role %q, which cannot use %s %s: it needs role %q or admin",
				k.Role, r.Method, r.URL.Path, need))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), keyContextKey{}, k)))
	}
}
