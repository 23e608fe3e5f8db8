package giftcard_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/testenv"
)

var db *testenv.Database

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "giftcard", &db))
}

var providers = []string{giftcard.SandboxProviderName}

func TestCatalogFilesParse(t *testing.T) {
	csv := "id,name,currency,minAmount,maxAmount,denominations\n" +
		"acme-coffee,Acme Coffee,USD,500,10000,\n" +
		"acme-books,\"Acme Books, Inc.\",EUR,1000,5000,5000|1000 2500\n"
	brands, err := giftcard.ParseCatalog([]byte(csv), providers)
	if err != nil {
		t.Fatal(err)
	}
	if len(brands) != 2 || brands[1].Name != "Acme Books, Inc." || !slices.Equal(brands[1].Denominations, []int64{1000, 2500, 5000}) ||
		brands[0].Provider != giftcard.SandboxProviderName || brands[0].Denominations != nil {
		t.Fatalf("csv: %+v", brands)
	}
	json := `[
  {"id": "acme-coffee", "name": "Acme Coffee", "currency": "USD", "minAmount": 500, "maxAmount": 10000},
  {"id": "acme-books", "name": "Acme Books", "currency": "EUR", "minAmount": 1000, "maxAmount": 5000, "denominations": [1000, 2500]}
]`
	brands, err = giftcard.ParseCatalog([]byte(json), providers)
	if err != nil || len(brands) != 2 || brands[1].Currency != "EUR" {
		t.Fatalf("json: %+v %v", brands, err)
	}
}

// A malformed brand refuses the whole file, naming its line and column.
func TestMalformedCatalogNamesLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		name, file   string
		line, column int
		field        string
	}{
		{"unknown column", "id,name,currency,minAmount,maxAmount,color\n", 1, 6, "color"},
		{"missing column", "id,name,currency,minAmount\nx,X,USD,1\n", 1, 5, "maxAmount"},
		{"amount not a number", "id,name,currency,minAmount,maxAmount\nok,Ok,USD,1,2\nbad,Bad,USD,1.50,100\n", 3, 4, "minAmount"},
		{"unknown currency", "id,name,currency,minAmount,maxAmount\nbad,Bad,XYZ,1,100\n", 2, 3, "currency"},
		{"range upside down", "id,name,currency,minAmount,maxAmount\nbad,Bad,USD,100,1\n", 2, 5, "maxAmount"},
		{"denomination out of range", "id,name,currency,minAmount,maxAmount,denominations\nbad,Bad,USD,100,200,50\n", 2, 6, "denominations"},
		{"id with a space", "id,name,currency,minAmount,maxAmount\nbad id,Bad,USD,1,2\n", 2, 1, "id"},
		{"same id twice", "id,name,currency,minAmount,maxAmount\na,A,USD,1,2\na,A,USD,1,2\n", 3, 1, "id"},
		{"unknown provider", "id,name,currency,minAmount,maxAmount,provider\na,A,USD,1,2,acme\n", 2, 6, "provider"},
		{"short row", "id,name,currency,minAmount,maxAmount\na,A,USD\n", 2, 4, ""},
		{"json wrong type", "[\n  {\"id\": \"a\", \"name\": \"A\", \"currency\": \"USD\", \"minAmount\": \"5\", \"maxAmount\": 10}\n]", 2, 60, "minAmount"},
		{"json unknown field", "[\n {\"id\": \"a\", \"name\": \"A\", \"currency\": \"USD\", \"minAmount\": 5, \"maxAmount\": 10},\n {\"id\": \"b\", \"colour\": \"red\"}\n]", 3, 14, ""},
		{"json bad brand", "[\n {\"id\": \"a\", \"name\": \"A\", \"currency\": \"USD\", \"minAmount\": 5, \"maxAmount\": 10},\n {\"id\": \"b\", \"name\": \"\", \"currency\": \"USD\", \"minAmount\": 5, \"maxAmount\": 10}\n]", 3, 2, "name"},
		{"json syntax", "[\n {\"id\": \"a\",,}\n]", 2, 13, ""},
		{"empty", "", 1, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := giftcard.ParseCatalog([]byte(tc.file), providers)
			var re *giftcard.RowError
			if !errors.As(err, &re) {
				t.Fatalf("err %v, want a RowError", err)
			}
			if re.Line != tc.line || re.Column != tc.column || re.Field != tc.field {
				t.Fatalf("%v: line %d column %d field %q, want %d %d %q", err, re.Line, re.Column, re.Field, tc.line, tc.column, tc.field)
			}
		})
	}
}

func TestImportIsIdempotentByBrandID(t *testing.T) {
	ctx := context.Background()
	s := giftcard.NewStore(db.Pool, nil, nil)
	brands, err := giftcard.ParseCatalog([]byte("id,name,currency,minAmount,maxAmount\nimp-a,A,USD,100,200\nimp-b,B,EUR,100,900\n"), providers)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.ImportBrands(ctx, brands); err != nil {
			t.Fatal(err)
		}
	}
	brands[0].Name, brands[0].MaxAmount = "A renamed", 300
	if err := s.ImportBrands(ctx, brands[:1]); err != nil {
		t.Fatal(err)
	}
	catalog, err := s.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range catalog {
		if !strings.HasPrefix(b.ID, "imp-") && !strings.HasPrefix(b.ID, "sandbox-") {
			continue // another test's
		}
		names = append(names, b.ID+"="+b.Name)
		if b.ID == "imp-a" && b.MaxAmount != 300 {
			t.Errorf("imp-a max %d after update, want 300", b.MaxAmount)
		}
	}
	want := []string{"imp-a=A renamed", "imp-b=B", "sandbox-books=Sandbox Books", "sandbox-coffee=Sandbox Coffee",
		"sandbox-declines=Sandbox Declines", "sandbox-slow=Sandbox Slow"}
	if !slices.Equal(names, want) {
		t.Fatalf("catalog %v, want %v", names, want)
	}
}
