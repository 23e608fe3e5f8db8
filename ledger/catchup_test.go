package ledger

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Two apply groups of one workspace (USD and EUR lanes) commit out of the
// order they decided in: a reader catching up with ?after= must still see
// every event. The USD group is held, mid-write, by another session's lock
// on its transaction's row while the EUR group commits; a poller that reads
// meanwhile, and then asks for what came after what it saw, gets the USD
// event too.
func TestEventCatchUpCannotBeOvertaken(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 1_000)
	f.fund(t, "EUR", 1_000)
	usd, eur := f.submit(t, TypeCredit, f.wallet(t, "USD", nil).ID, 10, "USD"), f.submit(t, TypeCredit, f.wallet(t, "EUR", nil).ID, 10, "EUR")

	holder, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM transactions WHERE id = $1 FOR NO KEY UPDATE`, usd.ID); err != nil {
		t.Fatal(err)
	}
	usdDone := make(chan error, 1)
	go func() { _, err := f.l.ApplyLane(ctx, usd.LaneID()); usdDone <- err }()
	waitForLockWait(t, usd.ID)
	if _, err := f.l.ApplyLane(ctx, eur.LaneID()); err != nil {
		t.Fatal(err)
	}

	// The poller: read everything there is now, then keep asking for what
	// came after the last event it saw.
	seen := map[string]bool{}
	last := ""
	poll := func() {
		for {
			page, err := f.l.Events(ctx, f.workspace, "", last, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				return
			}
			for _, e := range page {
				if seen[e.ID] {
					t.Errorf("event %s returned twice", e.ID)
				}
				seen[e.ID] = true
			}
			last = page[len(page)-1].ID
		}
	}
	poll()
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-usdDone; err != nil {
		t.Fatal(err)
	}
	all := f.events(t, "") // two fundings, two credits
	poll()
	for _, e := range all {
		if !seen[e.ID] {
			t.Errorf("the poller never got %s (%s)", e.ID, e.Type)
		}
	}
	// A receiver that learnt of the EUR event by webhook, the moment its
	// group committed, and asks for what came after it, gets the USD one.
	var eurEvent, usdEvent string
	for _, e := range all {
		switch {
		case strings.Contains(string(e.Data), eur.ID):
			eurEvent = e.ID
		case strings.Contains(string(e.Data), usd.ID):
			usdEvent = e.ID
		}
	}
	after, err := f.l.Events(ctx, f.workspace, "", eurEvent, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0].ID != usdEvent {
		t.Errorf("after the EUR event (by webhook): %d events, want the USD one", len(after))
	}
	if len(all) != 4 {
		t.Errorf("%d events, want 4", len(all))
	}
}

// waitForLockWait returns once some session waits for a row lock, as the
// apply group does on the held transaction row.
func waitForLockWait(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing waits on %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
