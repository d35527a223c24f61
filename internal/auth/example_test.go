package auth_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/weatherfunc/handler/internal/auth"
)

// The handler builds one Verifier from its settings, starts the background
// key loading without waiting for it, and puts Middleware in front of the
// API routes. Until the keys are in, the API answers 503 with Retry-After.
func ExampleVerifier_Middleware() {
	v, err := auth.New(auth.Options{
		TenantID:      "7f1c0d2e-4b5a-4c6d-8e9f-0a1b2c3d4e5f",
		AuthorityHost: auth.DefaultAuthorityHost,
		ClientID:      "3e2d1c0b-aaaa-4bbb-8ccc-123456789abc",
		Logger:        slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	})
	if err != nil {
		panic(err) // cmd/handler reports it and exits non-zero
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.Start(ctx) // returns at once

	weather := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.ClaimsFrom(r.Context())
		_ = c.AuthorizedParty // which client called
	})
	mux := http.NewServeMux()
	mux.Handle("GET /api/WeatherHttp", v.Middleware(weather))
	_ = mux
}
