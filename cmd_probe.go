package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// probeTimeout bounds a health check.
const probeTimeout = 5 * time.Second

// probe is a container's health check where the image has no shell or
// curl: orbt probe http://127.0.0.1:9090/readyz exits 0 on a 2xx answer.
func probe(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: orbt probe URL")
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("probe: %s answered %s", args[0], res.Status)
	}
	return nil
}
