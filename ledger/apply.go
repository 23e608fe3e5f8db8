package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orbt/orbt/store"
)

// Outcome is what applying one transaction decided.
type Outcome struct {
	TransactionID string
	WorkspaceID   string
	Status        string
	EventID       string
}

// Applied is what one or more groups applied.
type Applied struct {
	Outcomes []Outcome
	// Deliveries are the webhook deliveries the outcome events created.
	Deliveries []string
}

// ApplyLane applies every pending transaction of one partner balance, in
// groups: each group is one database transaction that locks the partner
// balance once, checks its transactions in order against running balances,
// and writes their entries, balances, statuses and events together. It
// returns once a group finds less than a full group pending.
func (l *Ledger) ApplyLane(ctx context.Context, laneID int64) (Applied, error) {
	return l.ApplyLanes(ctx, []int64{laneID})
}

// ApplyLanes is ApplyLane for several partner balances at once: it applies
// groups (see ApplyGroup) until none of the lanes has more pending work.
func (l *Ledger) ApplyLanes(ctx context.Context, laneIDs []int64) (Applied, error) {
	var all Applied
	for lanes := laneIDs; len(lanes) > 0; {
		group, full, err := l.ApplyGroup(ctx, lanes)
		all.Outcomes = append(all.Outcomes, group.Outcomes...)
		all.Deliveries = append(all.Deliveries, group.Deliveries...)
		if err != nil {
			return all, err
		}
		lanes = full
	}
	return all, nil
}

// ApplyGroup applies one group over several partner balances: one database
// transaction locks all of them (in id order) and takes a share of the
// group from each, so many partners with a little pending work each share
// one transaction instead of paying for one apiece. A lane's share is
// groupMax divided among the lanes, so a group stays about groupMax
// transactions however many lanes it covers. It returns the lanes that
// filled their share, which may have more pending work, and store.ErrNotFound
// only when none of the lanes exists. A deadlock or serialisation failure
// retakes the group.
func (l *Ledger) ApplyGroup(ctx context.Context, laneIDs []int64) (Applied, []int64, error) {
	lanes := slices.Clone(laneIDs)
	slices.Sort(lanes)
	lanes = slices.Compact(lanes)
	share := max(1, l.groupMax/max(1, len(lanes)))
	for conflicts := 0; ; conflicts++ {
		group, full, err := l.applyGroup(ctx, lanes, share)
		if !isLockConflict(err) || conflicts == lockConflictRetries {
			return group, full, err
		}
		// The group rolled back whole; take it again, here rather than
		// through the queue's retry delay.
		time.Sleep(time.Duration(conflicts+1) * 10 * time.Millisecond)
	}
}

// lockConflictRetries bounds how often ApplyLane takes a group again after
// Postgres chose it as a deadlock victim or refused it to serialise. Locks
// are taken in one order, so this is a guard, not a path in use.
const lockConflictRetries = 5

func isLockConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// account is a locked ledger account and its running balance.
type account struct {
	id      int64
	kind    string
	balance int64
	delta   int64
}

// campaignState is a locked campaign and its running counters.
type campaignState struct {
	id               string
	status           string
	budget           *int64
	credited         int64
	debited          int64
	startsAt, endsAt *time.Time
	dCredited        int64
	dDebited         int64
}

func (c *campaignState) activeAt(now time.Time) bool {
	return c.status == "active" && (c.startsAt == nil || !now.Before(*c.startsAt)) && (c.endsAt == nil || now.Before(*c.endsAt))
}

// pending is a transaction waiting in a lane, joined with its wallet.
type pending struct {
	Transaction
	walletAccountID *int64
	walletCurrency  *Currency
	walletStatus    *string
	campaignID      *string
}

// entry is one side of a posting.
type entry struct {
	transactionID string
	accountID     int64
	amount        int64
	balanceAfter  int64
}

// lane is a locked partner balance with its workspace and currency.
type lane struct {
	account
	workspaceID string
	currency    Currency
}

func (l *Ledger) applyGroup(ctx context.Context, laneIDs []int64, limit int) (Applied, []int64, error) {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return Applied{}, nil, fmt.Errorf("apply lanes %v: begin: %w", laneIDs, err)
	}
	defer tx.Rollback(ctx)
	fail := func(err error) (Applied, []int64, error) {
		return Applied{}, nil, fmt.Errorf("apply lanes %v: %w", laneIDs, err)
	}

	// 1. The lane locks: each partner balance locked once for the group, in
	// id order. Every lock here is FOR NO KEY UPDATE, the weakest lock that
	// keeps other writers of these rows out: unlike FOR UPDATE it lets the
	// foreign-key checks of rows that reference them (KEY SHARE) through,
	// so creating wallets, campaigns' wallets or batch items never waits
	// for a group.
	//
	// 2. The group: the oldest pending transactions of each lane, up to
	// limit each, read in the same round trip as the locks. The queue's
	// primary key is walked with a plain index scan, never a bitmap scan:
	// the queue churns, and only a plain scan marks the index entries of
	// applied (deleted) rows dead as it passes them, so the next group skips
	// them. A bitmap scan revisits every dead row until autovacuum runs
	// (measured: 300 ms for a lane with nothing pending behind 12,000
	// applied rows).
	var (
		b     pgx.Batch
		group []pending
		lanes = make(map[int64]*lane, len(laneIDs))
		now   time.Time
	)
	// The group's time is read once the locks are held, not at BEGIN: the
	// outcome happens now, after any wait for another group of a lane.
	b.Queue(`SELECT id, workspace_id, currency, balance, clock_timestamp() FROM ledger_accounts
		WHERE id = ANY ($1) AND kind = 'partner' ORDER BY id FOR NO KEY UPDATE`, laneIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			ln := &lane{account: account{kind: "partner"}}
			if err := rows.Scan(&ln.id, &ln.workspaceID, &ln.currency, &ln.balance, &now); err != nil {
				return err
			}
			lanes[ln.id] = ln
		}
		return rows.Err()
	})
	b.Queue(`SET LOCAL enable_bitmapscan = off`)
	b.Queue(`
		SELECT `+transactionColumns+`, w.account_id, w.currency, w.status, w.campaign_id
		FROM unnest($1::bigint[]) AS l(id)
		CROSS JOIN LATERAL (SELECT q.transaction_id FROM pending_transactions q
			WHERE q.lane_account_id = l.id ORDER BY q.lane_account_id, q.transaction_id LIMIT $2) q
		JOIN transactions t ON t.id = q.transaction_id
		LEFT JOIN wallets w ON w.id = t.wallet_id
		ORDER BY l.id, q.transaction_id`, laneIDs, limit).Query(func(rows pgx.Rows) error {
		var err error
		group, err = pgx.CollectRows(rows, scanPending)
		return err
	})
	b.Queue(`SET LOCAL enable_bitmapscan = on`)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fail(fmt.Errorf("lock and select pending: %w", err))
	}
	if len(lanes) == 0 {
		return fail(store.ErrNotFound)
	}
	var full []int64
	perLane := make(map[int64]int, len(lanes))
	for _, p := range group {
		perLane[p.laneID]++
	}
	for id, n := range perLane {
		if n >= limit {
			full = append(full, id)
		}
	}
	slices.Sort(full)

	// A queue row whose transaction is no longer pending must not stop its
	// lane: it is dropped, never applied again. (Only a process writing
	// outcomes without the queue, one that predates it, could leave one.)
	var stale []string
	group = slices.DeleteFunc(group, func(p pending) bool {
		if lanes[p.laneID] == nil {
			return true // not a partner balance this group holds: never touched
		}
		if p.Status != StatusPending {
			stale = append(stale, p.ID)
			return true
		}
		return false
	})
	if len(stale) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM pending_transactions WHERE lane_account_id = ANY ($1) AND transaction_id = ANY ($2)`,
			laneIDs, stale); err != nil {
			return fail(fmt.Errorf("drop stale queue rows: %w", err))
		}
	}
	if len(group) == 0 {
		return Applied{}, full, tx.Commit(ctx)
	}

	// 3. Lock everything else the group touches, in id order, after the lanes.
	accounts, funding, campaigns, batches, err := lockGroup(ctx, tx, lanes, group)
	if err != nil {
		return fail(err)
	}
	for id, ln := range lanes {
		accounts[id] = &ln.account
	}

	// 4. Decide each transaction in order against the running balances.
	var (
		entries  []entry
		outcomes = make([]Outcome, 0, len(group))
		events   = make([]eventRow, 0, len(group))
	)
	for i := range group {
		p := &group[i]
		ln := &lanes[p.laneID].account
		reason := decide(p, ln, accounts, campaigns, now)
		if reason == "" {
			var from, to *account
			switch p.Type {
			case TypeCredit:
				from, to = ln, accounts[*p.walletAccountID]
			case TypeDebit:
				from, to = accounts[*p.walletAccountID], ln
			case TypeFunding:
				if from = funding[p.laneID]; from == nil {
					return fail(fmt.Errorf("%w: no funding account for lane %d", ErrInvariant, p.laneID))
				}
				to = ln
			}
			entries = post(entries, p.ID, from, to, p.Amount)
			if c := campaigns[deref(p.campaignID)]; c != nil {
				if p.Type == TypeCredit {
					c.dCredited += p.Amount
				} else {
					c.dDebited += p.Amount
				}
			}
			p.Status = StatusCompleted
		} else {
			p.Status = StatusFailed
			p.FailureReason = &reason
		}
		p.CompletedAt = &now
		if b := batches[deref(p.BatchID)]; b != nil {
			b.settle(p.Status, now)
		}
		ev, err := newEvent(p.workspaceID, "transaction."+p.Status, now, p.Transaction)
		if err != nil {
			return fail(err)
		}
		events = append(events, ev)
		outcomes = append(outcomes, Outcome{TransactionID: p.ID, WorkspaceID: p.workspaceID, Status: p.Status, EventID: ev.id})
	}
	if err := checkGroup(entries, accounts); err != nil {
		return fail(err)
	}

	// 5. Write the group: one round trip, every table once.
	var deliveries []string
	if err := l.writeGroup(ctx, tx, group, entries, accounts, campaigns, batches, events, now, &deliveries); err != nil {
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	return Applied{Outcomes: outcomes, Deliveries: deliveries}, full, nil
}

func scanPending(r pgx.CollectableRow) (pending, error) {
	var p pending
	err := r.Scan(append(p.fields(), &p.walletAccountID, &p.walletCurrency, &p.walletStatus, &p.campaignID)...)
	return p, err
}

// decide returns the failure reason of a pending transaction, or "" when it
// can be applied against the running balances.
func decide(p *pending, lane *account, accounts map[int64]*account, campaigns map[string]*campaignState, now time.Time) string {
	if p.Type == TypeFunding {
		return ""
	}
	if deref(p.walletStatus) != "active" {
		return ReasonWalletClosed
	}
	if deref(p.walletCurrency) != p.Currency {
		return ReasonCurrencyMismatch
	}
	wallet := accounts[*p.walletAccountID]
	campaign := campaigns[deref(p.campaignID)]
	switch p.Type {
	case TypeCredit:
		if campaign != nil {
			if !campaign.activeAt(now) {
				return ReasonCampaignInactive
			}
			used := campaign.credited + campaign.dCredited - campaign.debited - campaign.dDebited
			if campaign.budget != nil && used+p.Amount > *campaign.budget {
				return ReasonCampaignBudgetExceeded
			}
		}
		if lane.balance < p.Amount {
			return ReasonInsufficientPartnerFunds
		}
	case TypeDebit:
		if wallet.balance < p.Amount {
			return ReasonInsufficientFunds
		}
	}
	return ""
}

// post moves amount from one account to another: two entries summing to zero.
func post(entries []entry, txnID string, from, to *account, amount int64) []entry {
	from.balance -= amount
	from.delta -= amount
	to.balance += amount
	to.delta += amount
	return append(entries,
		entry{transactionID: txnID, accountID: from.id, amount: -amount, balanceAfter: from.balance},
		entry{transactionID: txnID, accountID: to.id, amount: amount, balanceAfter: to.balance})
}

// checkGroup asserts the ledger's invariants over what the group is about to
// write: every transaction's entries sum to zero, and no balance that must
// stay non-negative went below zero. A violation is a bug: the group rolls
// back rather than write it.
func checkGroup(entries []entry, accounts map[int64]*account) error {
	sums := make(map[string]int64)
	for _, e := range entries {
		sums[e.transactionID] += e.amount
	}
	for id, sum := range sums {
		if sum != 0 {
			return fmt.Errorf("%w: transaction %s entries sum to %d", ErrInvariant, id, sum)
		}
	}
	for _, a := range accounts {
		if a.balance < 0 && a.kind != "funding" && a.kind != "settlement" {
			return fmt.Errorf("%w: account %d would go to %d", ErrInvariant, a.id, a.balance)
		}
	}
	return nil
}

// groupBatchIDs lists, sorted and once each, the batches of a group's transactions.
func groupBatchIDs(group []pending) []string {
	var ids []string
	for _, p := range group {
		if p.BatchID != nil {
			ids = append(ids, *p.BatchID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// lockGroup locks, in one round trip and each kind in id order, the wallet
// accounts, the lanes' funding accounts, the campaigns and the batches the
// group touches. It returns the lanes' funding accounts by lane.
func lockGroup(ctx context.Context, tx pgx.Tx, lanes map[int64]*lane, group []pending) (
	map[int64]*account, map[int64]*account, map[string]*campaignState, map[string]*batchState, error) {
	var accountIDs []int64
	var campaignIDs []string
	for _, p := range group {
		if p.walletAccountID != nil {
			accountIDs = append(accountIDs, *p.walletAccountID)
		}
		if p.campaignID != nil {
			campaignIDs = append(campaignIDs, *p.campaignID)
		}
	}
	slices.Sort(campaignIDs)
	campaignIDs = slices.Compact(campaignIDs)
	laneOf := make(map[[2]string]int64, len(lanes))
	var laneWS, laneCur []string
	for id, ln := range lanes {
		laneOf[[2]string{ln.workspaceID, string(ln.currency)}] = id
		laneWS, laneCur = append(laneWS, ln.workspaceID), append(laneCur, string(ln.currency))
	}

	var b pgx.Batch
	accounts := make(map[int64]*account)
	funding := make(map[int64]*account, len(lanes))
	// Wallets, then the lanes' funding accounts (the only edge a group
	// posts to: settlement and clearing are the redemption steps'), in
	// this order in every group, and a funding account only ever under its
	// lane's lock.
	lockAccounts := func(rows pgx.Rows) error {
		for rows.Next() {
			a := &account{}
			var ws, cur string
			if err := rows.Scan(&a.id, &a.kind, &a.balance, &ws, &cur); err != nil {
				return err
			}
			accounts[a.id] = a
			if a.kind == "funding" {
				funding[laneOf[[2]string{ws, cur}]] = a
			}
		}
		return rows.Err()
	}
	b.Queue(`SELECT id, kind, balance, workspace_id, currency FROM ledger_accounts
		WHERE id = ANY ($1) ORDER BY id FOR NO KEY UPDATE`, accountIDs).Query(lockAccounts)
	b.Queue(`SELECT a.id, a.kind, a.balance, a.workspace_id, a.currency FROM ledger_accounts a
		JOIN unnest($1::text[], $2::text[]) AS e(ws, cur) ON a.workspace_id = e.ws AND a.currency = e.cur
		WHERE a.kind = 'funding' ORDER BY a.id FOR NO KEY UPDATE`, laneWS, laneCur).Query(lockAccounts)
	campaigns := make(map[string]*campaignState)
	if len(campaignIDs) > 0 {
		b.Queue(`SELECT id, status, budget, credited, debited, starts_at, ends_at
			FROM campaigns WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, campaignIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				c := &campaignState{}
				if err := rows.Scan(&c.id, &c.status, &c.budget, &c.credited, &c.debited, &c.startsAt, &c.endsAt); err != nil {
					return err
				}
				campaigns[c.id] = c
			}
			return rows.Err()
		})
	}
	batches := queueLockBatches(&b, groupBatchIDs(group))
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("lock accounts, campaigns and batches: %w", err)
	}
	return accounts, funding, campaigns, batches, nil
}

// writeGroup writes a decided group with one statement per table, sent in
// one round trip: each balance and campaign is updated once with the group's
// sum, never once per transaction.
func (l *Ledger) writeGroup(ctx context.Context, tx pgx.Tx, group []pending, entries []entry, accounts map[int64]*account,
	campaigns map[string]*campaignState, batches map[string]*batchState, events []eventRow, now time.Time, deliveries *[]string) error {
	var b pgx.Batch

	n := len(entries)
	eTxn, eAcct, eAmt, eBal := make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, e := range entries {
		eTxn[i], eAcct[i], eAmt[i], eBal[i] = e.transactionID, e.accountID, e.amount, e.balanceAfter
	}
	b.Queue(`INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, created_at)
		SELECT t, a, m, b, $5 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(t, a, m, b)`,
		eTxn, eAcct, eAmt, eBal, now)

	var aID, aDelta []int64
	for _, a := range accounts {
		if a.delta != 0 {
			aID, aDelta = append(aID, a.id), append(aDelta, a.delta)
		}
	}
	wantAccounts := len(aID)
	b.Queue(`UPDATE ledger_accounts a SET balance = a.balance + d.delta
		FROM unnest($1::bigint[], $2::bigint[]) AS d(id, delta) WHERE a.id = d.id`, aID, aDelta).
		Exec(func(tag pgconn.CommandTag) error {
			return expectRows("ledger_accounts", tag.RowsAffected(), wantAccounts)
		})

	var cID []string
	var cCredited, cDebited []int64
	for _, c := range campaigns {
		if c.dCredited != 0 || c.dDebited != 0 {
			cID, cCredited, cDebited = append(cID, c.id), append(cCredited, c.dCredited), append(cDebited, c.dDebited)
		}
	}
	if len(cID) > 0 {
		b.Queue(`UPDATE campaigns c SET credited = c.credited + d.cr, debited = c.debited + d.db
			FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(id, cr, db) WHERE c.id = d.id`,
			cID, cCredited, cDebited)
	}

	tID, tStatus, tReason := make([]string, len(group)), make([]string, len(group)), make([]string, len(group))
	for i, p := range group {
		tID[i], tStatus[i], tReason[i] = p.ID, p.Status, deref(p.FailureReason)
	}
	wantTxns := len(group)
	b.Queue(`UPDATE transactions t SET status = u.status, failure_reason = NULLIF(u.reason, ''), completed_at = $4
		FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, status, reason)
		WHERE t.id = u.id AND t.status = 'pending'`, tID, tStatus, tReason, now).
		Exec(func(tag pgconn.CommandTag) error { return expectRows("transactions", tag.RowsAffected(), wantTxns) })
	laneIDs := make([]int64, 0, len(group))
	for _, p := range group {
		laneIDs = append(laneIDs, p.laneID)
	}
	slices.Sort(laneIDs)
	laneIDs = slices.Compact(laneIDs)
	queueAnnounce(&b, laneIDs)
	b.Queue(`DELETE FROM pending_transactions WHERE lane_account_id = ANY ($1) AND transaction_id = ANY ($2)`,
		laneIDs, tID).
		Exec(func(tag pgconn.CommandTag) error {
			return expectRows("pending_transactions", tag.RowsAffected(), wantTxns)
		})

	events, err := queueBatchUpdates(&b, slices.Collect(maps.Values(batches)), events)
	if err != nil {
		return fmt.Errorf("write group: %w", err)
	}
	l.queueEvents(&b, events, deliveries)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("write group: %w", err)
	}
	return nil
}

func expectRows(table string, got int64, want int) error {
	if got != int64(want) {
		return fmt.Errorf("%w: updated %d %s rows, want %d", ErrInvariant, got, table, want)
	}
	return nil
}

// eventRow is an event about to be written.
type eventRow struct {
	id, workspaceID, typ string
	data                 []byte
	createdAt            time.Time
}

func newEvent(workspaceID, typ string, at time.Time, object any) (eventRow, error) {
	data, err := json.Marshal(object)
	if err != nil {
		return eventRow{}, fmt.Errorf("event %s: %w", typ, err)
	}
	return eventRow{id: store.NewID("evt"), workspaceID: workspaceID, typ: typ, data: data, createdAt: at}, nil
}

// queueEvents writes events and, in the same database transaction, their
// webhook deliveries (the fan-out the webhook package hands the ledger): an
// outbox, so an event that commits is an event that will be delivered. The
// new deliveries' ids are appended to *deliveries when the batch runs.
//
// Each event is numbered in its workspace's sequence, from a counter row
// the statement updates (in workspace order) and the transaction holds
// until it commits: another writer of the workspace numbers its events only
// after this one has committed, so catch-up, which reads in sequence order,
// can never be overtaken by a later commit. Callers queue this after every
// other lock they take, so the counters are held for the commit alone.
func (l *Ledger) queueEvents(b *pgx.Batch, events []eventRow, deliveries *[]string) {
	n := len(events)
	ids, ws, types, data, at := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	ranks := make([]int64, n)
	counts := make(map[string]int64)
	refs := make([]EventRef, n)
	for i, e := range events {
		ids[i], ws[i], types[i], data[i], at[i] = e.id, e.workspaceID, e.typ, string(e.data), e.createdAt
		counts[e.workspaceID]++
		ranks[i] = counts[e.workspaceID]
		refs[i] = EventRef{ID: e.id, WorkspaceID: e.workspaceID, Type: e.typ}
	}
	seqWS := slices.Sorted(maps.Keys(counts))
	seqN := make([]int64, len(seqWS))
	for i, w := range seqWS {
		seqN[i] = counts[w]
	}
	b.Queue(`WITH counters AS (
			INSERT INTO event_sequences (workspace_id, last_seq)
			SELECT ws, n FROM unnest($6::text[], $7::bigint[]) AS c(ws, n) ORDER BY ws
			ON CONFLICT (workspace_id) DO UPDATE SET last_seq = event_sequences.last_seq + EXCLUDED.last_seq
			RETURNING workspace_id, last_seq)
		INSERT INTO events (id, workspace_id, type, data, created_at, seq)
		SELECT u.id, u.ws, u.type, u.data, u.at, s.last_seq - c.n + u.rank
		FROM unnest($1::text[], $2::text[], $3::text[], $4::json[], $5::timestamptz[], $8::bigint[]) AS u(id, ws, type, data, at, rank)
		JOIN counters s ON s.workspace_id = u.ws
		JOIN unnest($6::text[], $7::bigint[]) AS c(ws, n) ON c.ws = u.ws`,
		ids, ws, types, data, at, seqWS, seqN, ranks)
	l.fanout(b, refs, deliveries)
}
