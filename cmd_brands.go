package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/orbt/orbt/config"
	"github.com/orbt/orbt/giftcard"
)

// importBrands loads a catalog file (CSV or JSON) into the brands table:
// every brand or none, idempotent by brand id. A malformed brand is
// refused naming its line and column.
func importBrands(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) != 2 || args[0] != "import" {
		return errors.New("usage: orbt brands import FILE   (CSV with a header row, or a JSON array)")
	}
	data, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	brands, err := giftcard.ParseCatalog(data, []string{giftcard.SandboxProviderName})
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", args[1], err)
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := giftcard.NewStore(pool, nil, nil).ImportBrands(ctx, brands); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imported %d brands from %s\n", len(brands), args[1])
	return nil
}
