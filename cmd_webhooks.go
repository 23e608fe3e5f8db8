package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/webhooksig"
)

// listenBodyBytesMax bounds what the local receiver reads of one delivery.
const listenBodyBytesMax = 1 << 20

// listenWebhooks runs `orbt webhooks listen`: a local receiver for partners
// testing their integration. It verifies each delivery with the endpoint's
// secret (several, comma-separated, during a rotation), prints it, and
// answers 204, or 401 when the signature or timestamp is wrong.
func listenWebhooks(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("webhooks listen", flag.ContinueOnError)
	addr := fs.String("addr", ":9000", "listen address")
	secretList := fs.String("secret", os.Getenv("ORBT_WEBHOOK_SECRET"), "endpoint secret(s), whsec_…, comma-separated")
	if len(args) == 0 || args[0] != "listen" {
		return errors.New("usage: orbt webhooks listen --addr :9000 --secret whsec_…")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *secretList == "" {
		return errors.New("--secret is required (the endpoint's whsec_… secret)")
	}
	secrets := strings.Split(*secretList, ",")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, listenBodyBytesMax))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := webhooksig.Verify(body, r.Header, secrets...); err != nil {
			fmt.Fprintf(os.Stderr, "%s REJECTED %s: %v\n", time.Now().Format(time.RFC3339), r.Header.Get(webhooksig.HeaderID), err)
			http.Error(w, "signature verification failed", http.StatusUnauthorized)
			return
		}
		var event struct {
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		json.Unmarshal(body, &event)
		fmt.Printf("%s verified %s %s %s\n", time.Now().Format(time.RFC3339), event.ID, event.Type, event.Data)
		w.WriteHeader(http.StatusNoContent)
	})
	fmt.Fprintf(os.Stderr, "listening on %s for Orbt webhooks\n", *addr)
	return server.Listen(ctx, *addr, h, server.DefaultTimeouts)
}
