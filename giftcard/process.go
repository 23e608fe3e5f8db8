package giftcard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbt/orbt/ledger"
)

// ProcessorOptions configure a Processor.
type ProcessorOptions struct {
	// Providers by name; a brand names its provider.
	Providers map[string]Provider
	// Timeout bounds one provider call.
	Timeout time.Duration
	// Attempts bounds the provider calls of one redemption, across worker
	// restarts; when they are spent, the hold is released with
	// provider_unavailable.
	Attempts int
	// RetryDelay is the pause after the first failed call; it doubles.
	RetryDelay time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Processor takes redemptions from accepted to final: hold, provider
// call outside any database transaction, capture or release.
type Processor struct {
	store   *Store
	opts    ProcessorOptions
	log     *slog.Logger
	latency *prometheus.HistogramVec
	outcome *prometheus.CounterVec
	// undecided counts provider answers that left a held redemption open
	// past its attempts, and cards issued for one already released.
	undecided prometheus.Counter
}

// NewProcessor builds a Processor over the store.
func NewProcessor(s *Store, opts ProcessorOptions) (*Processor, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 4
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Processor{store: s, opts: opts, log: opts.Logger,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orbt_provider_call_seconds",
			Help:    "Gift card provider calls, by provider and result (issued, declined, unavailable).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"provider", "result"}),
		outcome: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orbt_redemptions_total",
			Help: "Redemptions that reached their outcome, by status and failure reason.",
		}, []string{"status", "reason"}),
		undecided: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orbt_redemptions_undecided_total",
			Help: "Provider answers that left a held redemption open past its attempts (a timeout may hide an issued card), and cards issued for a redemption already released. Alert on any.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{p.latency, p.outcome, p.undecided} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// MaxDuration bounds one Process call: every provider call with its
// retry pauses, and the database work around them. The redemption task's
// timeout is set from it.
func (p *Processor) MaxDuration() time.Duration {
	d := time.Duration(p.opts.Attempts) * p.opts.Timeout
	for i, delay := 0, p.opts.RetryDelay; i < p.opts.Attempts; i, delay = i+1, min(delay*2, retryPauseMax) {
		d += delay
	}
	return d + time.Minute
}

// touchGap is the longest a live buy loop goes without touching its
// redemption: its longest pause, then a call.
func (p *Processor) touchGap() time.Duration {
	pause := p.opts.RetryDelay
	for i := 1; i < p.opts.Attempts && pause < retryPauseMax; i++ {
		pause *= 2
	}
	return min(pause, retryPauseMax) + p.opts.Timeout
}

// Process moves one redemption on as far as it goes: a pending one is
// held (or fails), a held one gets its card (or is released). It is safe
// to run twice at once or again after a crash at any point: every step
// locks the redemption and checks its status, and the provider is asked
// with the redemption's own idempotency key. It returns the webhook
// deliveries the outcome created, to enqueue.
func (p *Processor) Process(ctx context.Context, id string) ([]string, error) {
	r, err := p.store.redemption(ctx, p.store.pool, "", id, false)
	if err != nil {
		return nil, err
	}
	counted := false
	if r.Status == StatusPending {
		var deliveries []string
		r, counted, deliveries, err = p.hold(ctx, id)
		if err != nil || r.Status != StatusProcessing {
			return deliveries, err
		}
	}
	if r.Status != StatusProcessing {
		return nil, nil // final already
	}
	return p.buy(ctx, r, counted)
}

// hold decides a pending redemption: the brand checks, then the ledger's
// hold. A failure is final and moves nothing. heldHere tells whether this
// call held it (and so counted the first provider attempt), not another
// worker before it.
func (p *Processor) hold(ctx context.Context, id string) (out Redemption, heldHere bool, deliveries []string, err error) {
	failedHere := false
	err = p.inTx(ctx, func(tx pgx.Tx) error {
		r, err := p.store.redemption(ctx, tx, "", id, true)
		if err != nil || r.Status != StatusPending {
			out = r
			return err
		}
		reason, err := p.check(ctx, tx, r)
		if err != nil {
			return err
		}
		if reason == "" {
			reason, err = p.store.ledger.Hold(ctx, tx, ledger.HoldRequest{WorkspaceID: r.workspaceID, RedemptionID: r.ID,
				WalletID: r.WalletID, BrandID: r.BrandID, Amount: r.Amount, Currency: r.Currency})
			if err != nil {
				return err
			}
		}
		if reason != "" {
			out, deliveries, err = p.finish(ctx, tx, r, reason, nil)
			failedHere = err == nil
			return err
		}
		// The first provider attempt, made right after this commit, is
		// counted here: one write less per redemption.
		if _, err := tx.Exec(ctx, `UPDATE redemptions SET status = 'processing', provider_attempts = provider_attempts + 1,
			updated_at = now() WHERE id = $1`, r.ID); err != nil {
			return fmt.Errorf("redemption %s: hold: %w", r.ID, err)
		}
		r.Status = StatusProcessing
		out, heldHere = r, true
		return nil
	})
	if err == nil && failedHere {
		p.count(out)
	}
	return out, heldHere && err == nil, deliveries, err
}

// check applies the catalog's rules: the brand is enabled for the
// workspace, in the wallet's currency, and sells the amount.
func (p *Processor) check(ctx context.Context, tx pgx.Tx, r Redemption) (string, error) {
	rows, err := tx.Query(ctx, `SELECT `+brandColumns+` FROM workspace_brands wb JOIN brands b ON b.id = wb.brand_id
		WHERE wb.workspace_id = $1 AND wb.brand_id = $2`, r.workspaceID, r.BrandID)
	if err != nil {
		return "", fmt.Errorf("redemption %s: brand: %w", r.ID, err)
	}
	brands, err := pgx.CollectRows(rows, collectBrand)
	switch {
	case err != nil:
		return "", fmt.Errorf("redemption %s: brand: %w", r.ID, err)
	case len(brands) == 0:
		return ReasonBrandNotEnabled, nil
	case brands[0].Currency != r.Currency:
		return ledger.ReasonBrandNotAllowed, nil
	case !brands[0].Accepts(r.Amount):
		return ReasonAmountOutOfRange, nil
	}
	return "", nil
}

// buy asks the provider for the card of a held redemption, retrying with
// the same idempotency key after a pause that doubles (up to
// retryPauseMax), and settles: capture on a card, release on a decline.
// The hold is released as provider_unavailable only when the attempts
// (counted in the redemption's row, so across restarts) are spent and
// every one of them was a definite "did nothing" (ErrUnavailable): a call
// that timed out, or that a crash cut short (counted, never answered), may
// have bought the card. Then the redemption stays held, the run ends with
// an error, and the task's retries and the relay ask again with the same
// key until the provider answers for it (orbt_redemptions_undecided_total
// counts these runs). Every run asks at least once, so a card issued just
// before a crash is found and captured.
func (p *Processor) buy(ctx context.Context, r Redemption, counted bool) ([]string, error) {
	brand, provider, err := p.providerOf(ctx, r.BrandID)
	if err != nil {
		return nil, err
	}
	delay := p.opts.RetryDelay
	for {
		if !counted {
			err := p.store.pool.QueryRow(ctx, `UPDATE redemptions SET provider_attempts = provider_attempts + 1, updated_at = now()
				WHERE id = $1 AND status = 'processing' RETURNING provider_attempts`, r.ID).Scan(new(int))
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, nil // another worker settled it
			}
			if err != nil {
				return nil, fmt.Errorf("redemption %s: count attempt: %w", r.ID, err)
			}
		}
		counted = false
		card, callErr := p.call(ctx, brand, provider, r)
		switch {
		case callErr == nil:
			return p.settle(ctx, r.ID, "", &card)
		case errors.Is(callErr, ErrDeclined):
			return p.settle(ctx, r.ID, ReasonProviderDeclined, nil)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("redemption %s: %w", r.ID, ctx.Err())
		}
		var attempts, nothing int
		if errors.Is(callErr, ErrUnavailable) {
			err = p.store.pool.QueryRow(ctx, `UPDATE redemptions SET provider_nothing = provider_nothing + 1
				WHERE id = $1 RETURNING provider_attempts, provider_nothing`, r.ID).Scan(&attempts, &nothing)
		} else {
			err = p.store.pool.QueryRow(ctx, `SELECT provider_attempts, provider_nothing FROM redemptions WHERE id = $1`,
				r.ID).Scan(&attempts, &nothing)
		}
		if err != nil {
			return nil, fmt.Errorf("redemption %s: record the provider's answer: %w", r.ID, err)
		}
		if attempts >= p.opts.Attempts {
			if nothing >= attempts {
				p.log.WarnContext(ctx, "gift card provider unavailable; releasing the hold", "redemption_id", r.ID, "attempts", attempts, "err", callErr)
				return p.settle(ctx, r.ID, ReasonProviderUnavailable, nil)
			}
			p.log.ErrorContext(ctx, "gift card provider gave no definite answer for a held redemption; it stays held and is asked again later",
				"redemption_id", r.ID, "attempts", attempts, "definitely nothing", nothing, "err", callErr)
			p.undecided.Inc()
			return nil, fmt.Errorf("redemption %s: no definite answer from the provider after %d attempts: %w", r.ID, attempts, callErr)
		}
		p.log.InfoContext(ctx, "gift card provider call failed; retrying with the same key", "redemption_id", r.ID, "attempt", attempts, "err", callErr)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("redemption %s: %w", r.ID, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, retryPauseMax)
	}
}

// retryPauseMax caps the pause between provider calls.
const retryPauseMax = 30 * time.Second

func (p *Processor) providerOf(ctx context.Context, brandID string) (Brand, Provider, error) {
	rows, err := p.store.pool.Query(ctx, `SELECT `+brandColumns+` FROM brands b WHERE b.id = $1`, brandID)
	if err != nil {
		return Brand{}, nil, fmt.Errorf("brand %s: %w", brandID, err)
	}
	brand, err := pgx.CollectExactlyOneRow(rows, collectBrand)
	if err != nil {
		return Brand{}, nil, fmt.Errorf("brand %s: %w", brandID, err)
	}
	return brand, p.opts.Providers[brand.Provider], nil
}

// call makes one provider call under the call timeout.
func (p *Processor) call(ctx context.Context, brand Brand, provider Provider, r Redemption) (Card, error) {
	if provider == nil {
		p.latency.WithLabelValues(brand.Provider, "unavailable").Observe(0)
		return Card{}, fmt.Errorf("no provider %q is configured: %w", brand.Provider, ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	start := time.Now()
	card, err := provider.Issue(ctx, IssueRequest{IdempotencyKey: idempotencyKey(r.ID), BrandID: r.BrandID,
		Amount: r.Amount, Currency: r.Currency})
	result := "issued"
	switch {
	case errors.Is(err, ErrDeclined):
		result = "declined"
	case err != nil:
		result = "unavailable"
	case card.Code == "":
		result, err = "unavailable", errors.New("provider answered without a code")
	}
	p.latency.WithLabelValues(brand.Provider, result).Observe(time.Since(start).Seconds())
	return card, err
}

// settle ends a held redemption: capture with its card, or release with
// reason.
func (p *Processor) settle(ctx context.Context, id, reason string, card *Card) ([]string, error) {
	var deliveries []string
	var out Redemption // stays zero (not final) unless settled here
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		r, err := p.store.redemption(ctx, tx, "", id, true)
		if err != nil {
			return err
		}
		if r.Status != StatusProcessing {
			if card != nil && r.Status != StatusCompleted {
				// Cannot happen while only definite answers release; if it
				// does, a card was bought and not delivered: say so loudly.
				p.log.ErrorContext(ctx, "gift card issued for a redemption already released", "redemption_id", r.ID, "status", r.Status)
				p.undecided.Inc()
			}
			return nil
		}
		if err := p.store.ledger.Settle(ctx, tx, ledger.SettleRequest{WorkspaceID: r.workspaceID, RedemptionID: r.ID,
			WalletID: r.WalletID, Amount: r.Amount, Currency: r.Currency, Capture: card != nil}); err != nil {
			return err
		}
		out, deliveries, err = p.finish(ctx, tx, r, reason, card)
		return err
	})
	if err == nil {
		p.count(out)
	}
	return deliveries, err
}

// finish writes a redemption's outcome and its event, in tx.
func (p *Processor) finish(ctx context.Context, tx pgx.Tx, r Redemption, reason string, card *Card) (Redemption, []string, error) {
	var codeSealed, pinSealed []byte
	r.Status = StatusCompleted
	if card != nil {
		codeSealed = p.store.sealer.Seal(card.Code, sealContext(r.ID, "code"))
		if card.PIN != "" {
			pinSealed = p.store.sealer.Seal(card.PIN, sealContext(r.ID, "pin"))
		}
		r.ExpiresAt = card.ExpiresAt
	} else {
		r.Status, r.FailureReason = StatusFailed, &reason
	}
	err := tx.QueryRow(ctx, `UPDATE redemptions SET status = $2, failure_reason = $3, code_sealed = $4, pin_sealed = $5,
			card_expires_at = $6, completed_at = now(), updated_at = now()
		WHERE id = $1 RETURNING completed_at`, r.ID, r.Status, r.FailureReason, codeSealed, pinSealed, r.ExpiresAt).
		Scan(&r.CompletedAt)
	if err != nil {
		return Redemption{}, nil, fmt.Errorf("redemption %s: finish: %w", r.ID, err)
	}
	event := EventCompleted
	if card == nil {
		event = EventFailed
	}
	deliveries, err := p.store.ledger.RecordOutcome(ctx, tx, r.workspaceID, r.ID, event, r.WithoutCard())
	if err != nil {
		return Redemption{}, nil, err
	}
	return r, deliveries, nil
}

// count records an outcome that committed.
func (p *Processor) count(r Redemption) {
	if r.Final() {
		p.outcome.WithLabelValues(r.Status, deref(r.FailureReason)).Inc()
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (p *Processor) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := p.store.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("redemption: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("redemption: commit: %w", err)
	}
	return nil
}

// Stale lists the redemptions a worker lost: not final, and untouched for
// relayAfter plus the longest a live worker goes without touching one (it
// does at every provider attempt), so a live buy loop is never doubled.
// Were one doubled, both would ask with the same key and settle under
// the redemption's lock: one card, one capture.
func (p *Processor) Stale(ctx context.Context, relayAfter time.Duration, limit int) ([]string, error) {
	return p.store.Open(ctx, relayAfter+p.touchGap(), limit)
}
