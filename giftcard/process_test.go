package giftcard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/workspace"
)

// scripted is a provider that answers from a script, one answer a call;
// past the script it issues a card. The database, the ledger and the
// processor are the real ones: only the far side of the boundary is not.
type scripted struct {
	mu      sync.Mutex
	answers []error
	calls   int
}

var errTimeout = errors.New("provider call timed out")

func (s *scripted) Issue(ctx context.Context, req giftcard.IssueRequest) (giftcard.Card, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.answers) > 0 {
		err := s.answers[0]
		s.answers = s.answers[1:]
		return giftcard.Card{}, err
	}
	return giftcard.Card{Code: "CARD-" + req.IdempotencyKey, PIN: "1234"}, nil
}

// heldRedemption makes a workspace with a funded wallet of 5,000 and a
// pending redemption of 1,000 from it.
func heldRedemption(t *testing.T, s *giftcard.Store, l *ledger.Ledger) (ws string, r giftcard.Redemption) {
	t.Helper()
	ctx := context.Background()
	sealer, err := seal.NewSealer(make([]byte, seal.DataKeySize))
	if err != nil {
		t.Fatal(err)
	}
	workspaces := workspace.New(db.Pool, sealer)
	created, err := workspaces.CreateWorkspace(ctx, "script")
	if err != nil {
		t.Fatal(err)
	}
	ws = created.ID
	c, err := workspaces.CreateConsumer(ctx, ws, workspace.Consumer{ExternalID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.CreateWallet(ctx, ws, c.ID, ledger.WalletStandard, "USD", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []ledger.TransactionRequest{
		{WorkspaceID: ws, ReferenceID: "fund", Type: ledger.TypeFunding, Amount: 10_000, Currency: "USD"},
		{WorkspaceID: ws, ReferenceID: "credit", Type: ledger.TypeCredit, WalletID: w.ID, Amount: 5_000, Currency: "USD"},
	} {
		txn, _, err := l.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.ApplyLane(ctx, txn.LaneID()); err != nil {
			t.Fatal(err)
		}
	}
	// A brand of the scripted provider's own: the sandbox's bookkeeping
	// (and the invariant that checks it) stays out of it.
	if err := s.ImportBrands(ctx, []giftcard.Brand{{ID: "scripted", Name: "Scripted", Currency: "USD", MinAmount: 100,
		MaxAmount: 10_000, Provider: "script"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetEnabledBrands(ctx, ws, []string{"scripted"}); err != nil {
		t.Fatal(err)
	}
	r, _, err = s.Redeem(ctx, giftcard.RedeemRequest{WorkspaceID: ws, ReferenceID: store.NewID("r"), WalletID: w.ID,
		BrandID: "scripted", Amount: 1_000})
	if err != nil {
		t.Fatal(err)
	}
	return ws, r
}

// A hold is released as provider_unavailable only when every attempt was
// a definite "did nothing"; after a timeout it stays held, and the card a
// later call returns is captured.
func TestOnlyDefiniteAnswersReleaseTheHold(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, seal.DataKeySize)
	sealer, _ := seal.NewSealer(key)
	l := ledger.New(db.Pool, nil)
	s := giftcard.NewStore(db.Pool, l, sealer)
	unavailable := fmt.Errorf("503: %w", giftcard.ErrUnavailable)
	for _, tc := range []struct {
		name    string
		answers []error
		runs    int
		status  string
		reason  string
		held    int64
	}{
		{"unavailable every time", []error{unavailable, unavailable, unavailable}, 1, giftcard.StatusFailed, giftcard.ReasonProviderUnavailable, 0},
		{"a timeout, then unavailable", []error{errTimeout, unavailable, unavailable, unavailable, unavailable}, 2, giftcard.StatusProcessing, "", 1_000},
		{"a timeout, then unavailable, then the card", []error{errTimeout, unavailable, unavailable}, 2, giftcard.StatusCompleted, "", 0},
		{"declined after a timeout", []error{errTimeout, giftcard.ErrDeclined}, 1, giftcard.StatusFailed, giftcard.ReasonProviderDeclined, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			provider := &scripted{answers: tc.answers}
			p, err := giftcard.NewProcessor(s, giftcard.ProcessorOptions{
				Providers: map[string]giftcard.Provider{"script": provider},
				Timeout:   time.Second, Attempts: 3, RetryDelay: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ws, r := heldRedemption(t, s, l)
			for range tc.runs {
				p.Process(ctx, r.ID) // a run that ends undecided returns an error; the next run asks again
			}
			got, err := s.Redemption(ctx, ws, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			w, _ := l.Wallet(ctx, ws, r.WalletID)
			if got.Status != tc.status || (got.FailureReason == nil) != (tc.reason == "") || w.Held != tc.held {
				t.Fatalf("after %d calls: %s %v, held %d; want %s %q, held %d", provider.calls, got.Status, got.FailureReason, w.Held,
					tc.status, tc.reason, tc.held)
			}
			if tc.reason != "" && *got.FailureReason != tc.reason {
				t.Fatalf("reason %s, want %s", *got.FailureReason, tc.reason)
			}
			if tc.status == giftcard.StatusCompleted && (got.Code == nil || *got.Code != "CARD-orbt-"+r.ID) {
				t.Fatalf("card %v, want the one issued for the key", got.Code)
			}
			if err := errors.Join(l.CheckInvariants(ctx), s.CheckInvariants(ctx)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
