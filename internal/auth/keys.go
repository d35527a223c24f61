package auth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
)

// Key loading schedule (DESIGN §9 "Keys").
const (
	// retryFirst and retryMax bound the back-off while nothing is loaded:
	// the fetch is retried at least every retryMax.
	retryFirst = 250 * time.Millisecond
	retryMax   = 10 * time.Second
	// refreshInterval is how often loaded metadata and keys are refreshed
	// (Microsoft.IdentityModel refreshes every 12 h; Entra asks for ≤ 24 h).
	refreshInterval = 12 * time.Hour
	// refreshRetry is the wait after a failed scheduled refresh; the last
	// good keys stay in use meanwhile.
	refreshRetry = 5 * time.Minute
	// unknownKIDInterval rate-limits refetches caused by an unknown kid.
	unknownKIDInterval = 5 * time.Minute
	// unknownKIDWait is the longest a request waits for such a refetch.
	unknownKIDWait = 5 * time.Second
	// maxDocument caps a metadata or keys document.
	maxDocument = 1 << 20
	// minRSABits is the smallest RSA modulus a signing key may have.
	minRSABits = 2048
)

// tenantTemplate is the placeholder Entra writes into /common and
// /organizations documents instead of a tenant ID.
const tenantTemplate = "{tenantid}"

// metadata is what the verifier needs from the two discovery documents.
type metadata struct {
	v2Issuer string // exact issuer of "2.0" tokens
	v1Issuer string // exact issuer of "1.0" tokens
	jwksURI  string
}

// keySet is one successfully loaded keys document.
type keySet struct {
	kf      keyfunc.Keyfunc
	issuers map[string]string // kid → the key's published issuer ("" when none)
}

// discoveryDoc is the part of an OpenID Provider Configuration we read.
type discoveryDoc struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// flight is one keys fetch that concurrent callers share.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// Start loads the metadata and signing keys in a background goroutine and
// returns at once. Until they are loaded it retries with back-off, at least
// every 10 s; afterwards it refreshes them every 12 h (sooner after a failed
// refresh, keeping the last good keys meanwhile). It stops when ctx is done.
// Calls after the first do nothing.
func (v *Verifier) Start(ctx context.Context) {
	v.startOnce.Do(func() {
		v.mu.Lock()
		v.runCtx = ctx
		v.mu.Unlock()
		go v.run(ctx)
	})
}

// Ready reports whether metadata and signing keys are loaded, that is whether
// Verify can decide rather than answer ErrKeysUnavailable.
func (v *Verifier) Ready() bool { return v.keys.Load() != nil }

func (v *Verifier) run(ctx context.Context) {
	backoff := retryFirst
	for {
		err := v.load(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		switch {
		case !v.Ready():
			// NOTE: jitter only shortens the wait, so the retry interval
			// never exceeds retryMax.
			wait = backoff - rand.N(backoff/5+1)
			backoff = min(2*backoff, retryMax)
		case err != nil:
			wait = refreshRetry
		default:
			wait = refreshInterval
			backoff = retryFirst
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// load refreshes the metadata (keeping the old one when that fails) and then
// the keys. While metadata is loaded but keys are not, only the keys are
// retried. It returns every failure, joined.
func (v *Verifier) load(ctx context.Context) error {
	var metaErr error
	if v.meta.Load() == nil || v.Ready() {
		metaErr = v.loadMetadata(ctx)
	}
	if metaErr != nil {
		v.cfg.logger.LogAttrs(ctx, levelFor(v.meta.Load() == nil), "auth: metadata refresh failed",
			slog.Any("error", metaErr))
		if v.meta.Load() == nil {
			return metaErr
		}
	}
	f := v.shareKeyFetch()
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return errors.Join(metaErr, f.err)
}

func (v *Verifier) loadMetadata(ctx context.Context) error {
	base := v.cfg.authority + "/" + v.cfg.tenantID
	var d2, d1 discoveryDoc
	if _, err := v.getJSON(ctx, base+"/v2.0/.well-known/openid-configuration", &d2); err != nil {
		return fmt.Errorf("v2 metadata: %w", err)
	}
	if _, err := v.getJSON(ctx, base+"/.well-known/openid-configuration", &d1); err != nil {
		return fmt.Errorf("v1 metadata: %w", err)
	}
	m := metadata{jwksURI: d2.JWKSURI}
	var err error
	if m.v2Issuer, err = v.issuerFrom(d2.Issuer); err != nil {
		return fmt.Errorf("v2 metadata: %w", err)
	}
	if m.v1Issuer, err = v.issuerFrom(d1.Issuer); err != nil {
		return fmt.Errorf("v1 metadata: %w", err)
	}
	if m.jwksURI == "" {
		return errors.New("v2 metadata: no jwks_uri")
	}
	if err := checkFetchURL(m.jwksURI); err != nil {
		return fmt.Errorf("v2 metadata: jwks_uri %w", err)
	}
	if m.v1Issuer == m.v2Issuer {
		return errors.New("metadata: v1 and v2 issuers are the same")
	}
	v.meta.Store(&m)
	return nil
}

// issuerFrom turns a discovery document's issuer into the exact issuer of
// our tenant's tokens: the {tenantid} template (in /common documents) is
// replaced by our tenant.
//
// NOTE: stricter than OpenID Connect Discovery, which only asks for a URL:
// the issuer must name our tenant as a path segment, so a misconfigured
// authority cannot make another tenant's issuer ours.
func (v *Verifier) issuerFrom(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no issuer")
	}
	iss := strings.ReplaceAll(raw, tenantTemplate, v.cfg.tenantID)
	u, err := url.Parse(iss)
	if err != nil || checkFetchURL(iss) != nil {
		return "", errors.New("issuer is not an https URL")
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == v.cfg.tenantID {
			return iss, nil
		}
	}
	return "", errors.New("issuer does not name the configured tenant")
}

// shareKeyFetch returns the keys fetch in flight, starting one when there is
// none. Concurrent callers (the schedule and unknown-kid misses) share it.
func (v *Verifier) shareKeyFetch() *flight {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.shareKeyFetchLocked()
}

func (v *Verifier) shareKeyFetchLocked() *flight {
	if v.inflight != nil {
		return v.inflight
	}
	f := &flight{done: make(chan struct{})}
	v.inflight = f
	ctx := v.runCtx
	go func() {
		// The fetch runs on the verifier's context, not a request's: a
		// caller giving up does not cancel it for the others.
		f.err = v.loadKeys(ctx)
		if f.err != nil {
			v.cfg.logger.LogAttrs(ctx, levelFor(!v.Ready()), "auth: signing keys refresh failed", slog.Any("error", f.err))
		}
		v.mu.Lock()
		v.inflight = nil
		v.mu.Unlock()
		close(f.done)
	}()
	return f
}

// refetchForUnknownKID fetches the keys again because a token named a kid we
// do not have. At most one such refetch starts per unknownKIDInterval (the
// first after start is always allowed); a miss while any fetch is in flight
// joins it instead. The caller waits at most unknownKIDWait.
func (v *Verifier) refetchForUnknownKID(ctx context.Context) {
	v.mu.Lock()
	f := v.inflight
	if f == nil {
		now := v.cfg.now()
		if v.kidRefetched && now.Sub(v.lastKIDRefetch) < unknownKIDInterval {
			v.mu.Unlock()
			return
		}
		v.kidRefetched, v.lastKIDRefetch = true, now
		f = v.shareKeyFetchLocked()
	}
	v.mu.Unlock()
	t := time.NewTimer(v.refetchWait)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// loadKeys fetches the keys document named by the metadata and, when it
// holds at least one usable key, replaces the key set. On any failure the
// previous key set stays.
func (v *Verifier) loadKeys(ctx context.Context) error {
	m := v.meta.Load()
	if m == nil {
		return errors.New("keys: metadata not loaded")
	}
	body, err := v.getJSON(ctx, m.jwksURI, nil)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	ks, skipped, err := parseKeySet(body)
	for _, s := range skipped {
		v.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "auth: signing key skipped", slog.Any("error", s))
	}
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	v.keys.Store(ks)
	v.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "auth: signing keys loaded", slog.Int("keys", len(ks.issuers)))
	return nil
}

// parseKeySet reads a JWK Set document. Keys that are not RSA signing keys
// of at least 2048 bits, or that jwkset refuses (an x5c that does not match
// n/e, a wrong x5t …), are skipped and reported; a document without any
// usable key is an error.
func parseKeySet(body []byte) (*keySet, []error, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	store := jwkset.NewMemoryStorage()
	issuers := make(map[string]string, len(doc.Keys))
	var skipped []error
	for i, raw := range doc.Keys {
		var m jwkset.JWKMarshal
		var extra struct {
			Issuer string `json:"issuer"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		if err := json.Unmarshal(raw, &extra); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: issuer: %w", i, err))
			continue
		}
		switch {
		case m.KID == "" || !validKID(m.KID):
			skipped = append(skipped, fmt.Errorf("key %d: missing or malformed kid", i))
			continue
		case m.KTY != jwkset.KtyRSA:
			skipped = append(skipped, fmt.Errorf("key %q: kty %q is not RSA", m.KID, m.KTY))
			continue
		case m.USE != "" && m.USE != jwkset.UseSig:
			skipped = append(skipped, fmt.Errorf("key %q: use %q is not sig", m.KID, m.USE))
			continue
		case m.ALG != "" && m.ALG != jwkset.AlgRS256:
			skipped = append(skipped, fmt.Errorf("key %q: alg %q is not RS256", m.KID, m.ALG))
			continue
		case m.D != "" || m.P != "" || m.Q != "":
			skipped = append(skipped, fmt.Errorf("key %q: private key material in a public keys document", m.KID))
			continue
		}
		if _, dup := issuers[m.KID]; dup {
			skipped = append(skipped, fmt.Errorf("key %q: duplicate kid, first one kept", m.KID))
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %q: %w", m.KID, err))
			continue
		}
		pub, ok := jwk.Key().(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < minRSABits {
			skipped = append(skipped, fmt.Errorf("key %q: RSA key shorter than %d bits", m.KID, minRSABits))
			continue
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			skipped = append(skipped, fmt.Errorf("key %q: %w", m.KID, err))
			continue
		}
		issuers[m.KID] = extra.Issuer
	}
	if len(issuers) == 0 {
		return nil, skipped, errors.New("no usable RSA signing key in the document")
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store})
	if err != nil {
		return nil, skipped, err
	}
	return &keySet{kf: kf, issuers: issuers}, skipped, nil
}

// getJSON GETs a JSON document (200 only, at most maxDocument bytes) and
// decodes it into dst when dst is not nil. It returns the body.
func (v *Verifier) getJSON(ctx context.Context, u string, dst any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocument))
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocument {
		return nil, fmt.Errorf("GET %s: document larger than %d bytes", u, maxDocument)
	}
	if dst != nil {
		if err := json.Unmarshal(body, dst); err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
	}
	return body, nil
}

// levelFor is Error while nothing is loaded (requests are being refused)
// and Warn when the last good data is still serving.
func levelFor(nothingLoaded bool) slog.Level {
	if nothingLoaded {
		return slog.LevelError
	}
	return slog.LevelWarn
}
