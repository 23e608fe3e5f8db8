package batchreq_test

import (
	"encoding/csv"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orbt/orbt/batchreq"
	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
)

// FuzzReadCSV reads arbitrary bodies as CSV batches and validates them:
// nothing panics; every refusal is a 4xx *httperr.Error whose errors name
// an item's field (and, from a CSV, its line); and every item accepted is
// exactly its row: the cells as written, a positive amount within the
// limit (in major units, the exact value computed apart with math/big),
// a currency ISO 4217 lists, one wallet or consumer.
func FuzzReadCSV(f *testing.F) {
	header := strings.Join(batchreq.Columns, ",")
	for _, seed := range []struct {
		body     string
		major    bool
		itemsMax uint8
	}{
		{"referenceId,consumerExternalId,type,amount,currency\nr1,user-1,credit,500,USD\nr2,user-2,debit,1,JPY\n", false, 10},
		{"referenceId,consumerExternalId,type,amount,currency\nr1,user-1,credit,12.50,USD\nr2,user-2,credit,1.234,KWD\n", true, 10},
		{"\ufeffamount , referenceId,walletId,type,currency\n5,r1,wal_1,credit,EUR\n", false, 10},
		{header + "\nr1,wal_1,,credit,1,USD,,\"a, b\"\n", false, 10},
		{header + "\nr1,wal_1,user-1,credit,1,USD,cmp_1,\n", false, 10},
		{"referenceId,walletId,type,amount,currency\nr1,wal_1,credit,-5,USD\nr2,wal_1,credit,0,USD\nr3,wal_1,credit,1e3,USD\nr4,wal_1,credit,99999999999999999999,USD\n", false, 10},
		{"referenceId,walletId,type,amount,currency\nr1,wal_1,credit,12.505,USD\nr2,wal_1,credit,5.5,JPY\nr3,wal_1,credit,-1,USD\nr4,wal_1,credit,,USD\n", true, 10},
		{"referenceId,walletId,type,amount,currency\nr1,wal_1,credit,1,USD\nr2,wal_1,credit,1,USD\nr3,wal_1,credit,1,USD\n", false, 2},
		{"referenceId,walletId,type,amount,currency\nr1,wal_1,credit,1\n", false, 10},
		{"referenceId,walletId,type,amount,currency\n\"r1,wal_1,credit,1,USD\n", false, 10},
		{"referenceId,referenceId\n", false, 10},
		{"balance\n1\n", false, 10},
		{"", false, 10},
		{"referenceId,walletId,type,amount,currency\n", false, 10},
		{"referenceId,walletId,type,amount,currency,description\nr 1,wal\x00,refund,1,usd,\xff\n", false, 10},
	} {
		f.Add(seed.body, seed.major, seed.itemsMax)
	}
	f.Fuzz(func(t *testing.T, body string, major bool, itemsMaxByte uint8) {
		itemsMax := 1 + int(itemsMaxByte)%20
		units := batchreq.MinorUnits
		if major {
			units = batchreq.MajorUnits
		}
		items, lines, p := batchreq.ReadCSV(strings.NewReader(body), itemsMax, units)
		if p != nil {
			checkRefusal(t, body, p, "")
			return
		}
		if len(items) != len(lines) || len(items) > itemsMax {
			t.Fatalf("%d items, %d lines, at most %d: %q", len(items), len(lines), itemsMax, body)
		}
		var v validate.Validator
		out, p := batchreq.Validate(&v, items, lines, itemsMax)
		if p != nil {
			checkRefusal(t, body, p, "items")
			for _, fe := range p.Fields {
				if fe.Item != nil && fe.Line != lines[*fe.Item] {
					t.Fatalf("error %+v names line %d, item %d is on line %d: %q", fe, fe.Line, *fe.Item, lines[*fe.Item], body)
				}
			}
			return
		}
		rows := readRows(t, body)
		if len(out) == 0 || len(out) != len(rows) {
			t.Fatalf("%d items accepted from %d rows: %q", len(out), len(rows), body)
		}
		for i, it := range out {
			checkItem(t, body, i, it, rows[i], units)
		}
	})
}

// checkRefusal: a refusal is a 4xx problem, and each of its errors names
// a field: an item's (items[3].amount) or, when allowed, a whole one.
func checkRefusal(t *testing.T, body string, p *httperr.Error, whole string) {
	t.Helper()
	if p.Status < 400 || p.Status > 499 || p.Code == "" {
		t.Fatalf("refusal %d %q: %q", p.Status, p.Code, body)
	}
	for _, fe := range p.Fields {
		switch {
		case fe.Message == "":
			t.Fatalf("error %+v says nothing: %q", fe, body)
		case fe.Item != nil && !strings.HasPrefix(fe.Field, "items["+strconv.Itoa(*fe.Item)+"]."):
			t.Fatalf("error %+v names another item than its own: %q", fe, body)
		case fe.Item == nil && fe.Field != whole && fe.Field != "header" && fe.Field != "items":
			t.Fatalf("error %+v names no item: %q", fe, body)
		}
	}
}

// readRows reads the CSV apart from ReadCSV: each data row as a map of
// its header's (trimmed) names to its cells.
func readRows(t *testing.T, body string) []map[string]string {
	t.Helper()
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("ReadCSV took what encoding/csv refuses (%v): %q", err, body)
	}
	var rows []map[string]string
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, name := range records[0] {
			row[strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}

var decimal = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.([0-9]+))?$`)

// checkItem holds an accepted item to its row.
func checkItem(t *testing.T, body string, i int, it ledger.BatchItem, row map[string]string, units batchreq.Units) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("item %d %+v: "+format+": %q", append(append([]any{i, it}, args...), body)...)
	}
	if it.ReferenceID != row["referenceId"] || it.WalletID != row["walletId"] || it.ConsumerExternalID != row["consumerExternalId"] ||
		it.CampaignID != row["campaignId"] || it.Type != row["type"] || string(it.Currency) != row["currency"] {
		fail("is not its row %v", row)
	}
	if d := row["description"]; (d == "") != (it.Description == nil) || (it.Description != nil && *it.Description != d) {
		fail("description is not its row's %q", d)
	}
	switch {
	case !validate.Printable(it.ReferenceID) || it.ReferenceID == "" || len(it.ReferenceID) > validate.ReferenceIDLenMax:
		fail("referenceId")
	case (it.WalletID == "") == (it.ConsumerExternalID == ""):
		fail("not exactly one of walletId and consumerExternalId")
	case it.WalletID != "" && (it.CampaignID != "" || !validate.PathID(it.WalletID)):
		fail("walletId")
	case it.CampaignID != "" && !validate.PathID(it.CampaignID):
		fail("campaignId")
	case it.Type != ledger.TypeCredit && it.Type != ledger.TypeDebit:
		fail("type")
	case it.Amount <= 0 || it.Amount > validate.AmountMax:
		fail("amount out of range")
	case it.Description != nil && (!utf8.ValidString(*it.Description) || strings.ContainsRune(*it.Description, 0) ||
		utf8.RuneCountInString(*it.Description) > validate.DescriptionLenMax):
		fail("description")
	}
	if _, err := ledger.ParseCurrency(string(it.Currency)); err != nil {
		fail("currency: %v", err)
	}
	cell := row["amount"]
	if units == batchreq.MinorUnits {
		// An integer as strconv reads one ("+5" and "007" too: the value
		// is the same to every reader).
		if n, ok := new(big.Int).SetString(cell, 10); !ok || !n.IsInt64() || n.Int64() != it.Amount {
			fail("amount %d is not its cell %q", it.Amount, cell)
		}
		return
	}
	m := decimal.FindStringSubmatch(cell)
	if m == nil || len(m[3]) > it.Currency.Exponent() {
		fail("amount cell %q is not a decimal of at most %d places", cell, it.Currency.Exponent())
	}
	r, _ := new(big.Rat).SetString(cell)
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(it.Currency.Exponent())), nil)))
	if !r.IsInt() || !r.Num().IsInt64() || r.Num().Int64() != it.Amount {
		fail("amount %d is not exactly %s %s", it.Amount, cell, it.Currency)
	}
}
