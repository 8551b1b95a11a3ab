// Package webhooks verifies hookd's deliveries with the standard library alone.
package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

const tolerance = 5 * time.Minute

// ErrInvalid is returned for any request that must be refused.
var ErrInvalid = errors.New("invalid webhook")

// Verify checks that payload (the raw body) was signed by hookd with secret ("whsec_…") and
// that the timestamp is within ±5 minutes of now. id, timestamp and signature are the
// webhook-id, webhook-timestamp and webhook-signature headers.
func Verify(payload []byte, id, timestamp, signature, secret string, now time.Time) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrInvalid
	}
	// 1. Timestamp: plain digits, within the tolerance in either direction.
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || strings.ContainsAny(timestamp, "+-") {
		return ErrInvalid
	}
	if diff := now.Sub(time.Unix(secs, 0)); diff > tolerance || diff < -tolerance {
		return ErrInvalid
	}
	// 2. Expected tag: HMAC-SHA256 over "{id}.{timestamp}.{body}" with the decoded secret.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return ErrInvalid
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(payload)
	expected := mac.Sum(nil)
	// 3. Any "v1" entry of the space-separated list may match; compare in constant time.
	for _, entry := range strings.Split(signature, " ") {
		version, tag, found := strings.Cut(entry, ",")
		if !found || version != "v1" {
			continue
		}
		received, err := base64.StdEncoding.DecodeString(tag)
		if err == nil && hmac.Equal(received, expected) {
			return nil
		}
	}
	return ErrInvalid
}

// ReplayGuard remembers the webhook-id values already processed, so a replayed (or redelivered)
// request is recognised. In production keep them in your database, in the same transaction
// as the work; this in-memory version keeps each id for a day.
type ReplayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// FirstTime reports whether id is seen for the first time.
func (g *ReplayGuard) FirstTime(id string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = make(map[string]time.Time)
	}
	for old, at := range g.seen {
		if now.Sub(at) > 24*time.Hour {
			delete(g.seen, old)
		}
	}
	if _, ok := g.seen[id]; ok {
		return false
	}
	g.seen[id] = now
	return true
}
