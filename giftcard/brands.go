package giftcard

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
)

// Brand is a gift card brand of the catalog: open value between MinAmount
// and MaxAmount, or one of its Denominations when it has any.
type Brand struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Currency      ledger.Currency `json:"currency"`
	MinAmount     int64           `json:"minAmount"`
	MaxAmount     int64           `json:"maxAmount"`
	Denominations []int64         `json:"denominations,omitempty"`
	// Provider names who sells its cards; operators see it, partners don't.
	Provider string `json:"provider,omitempty"`
}

// Accepts reports whether amount is a card value the brand sells.
func (b Brand) Accepts(amount int64) bool {
	if len(b.Denominations) > 0 {
		return slices.Contains(b.Denominations, amount)
	}
	return amount >= b.MinAmount && amount <= b.MaxAmount
}

// ForPartners is the brand as partners and consumers see it.
func (b Brand) ForPartners() Brand {
	b.Provider = ""
	return b
}

// ErrUnknownBrand is a brand id the catalog does not hold.
var ErrUnknownBrand = fmt.Errorf("brand %w", store.ErrNotFound)

// UnknownBrandsError names the brand ids of a request the catalog does
// not hold, by their index in it.
type UnknownBrandsError struct{ Indexes []int }

func (e *UnknownBrandsError) Error() string { return fmt.Sprintf("unknown brands at %v", e.Indexes) }
func (e *UnknownBrandsError) Unwrap() error { return ErrUnknownBrand }

const brandColumns = `b.id, b.name, b.currency, b.min_amount, b.max_amount, b.denominations, b.provider`

func collectBrand(r pgx.CollectableRow) (Brand, error) {
	var b Brand
	err := r.Scan(&b.ID, &b.Name, &b.Currency, &b.MinAmount, &b.MaxAmount, &b.Denominations, &b.Provider)
	return b, err
}

// Catalog lists every brand, by id.
func (s *Store) Catalog(ctx context.Context) ([]Brand, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+brandColumns+` FROM brands b ORDER BY b.id`)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	list, err := pgx.CollectRows(rows, collectBrand)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return list, nil
}

// EnabledBrands lists the brands the workspace may redeem, by id.
func (s *Store) EnabledBrands(ctx context.Context, workspaceID string) ([]Brand, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+brandColumns+` FROM workspace_brands wb
		JOIN brands b ON b.id = wb.brand_id WHERE wb.workspace_id = $1 ORDER BY b.id`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("enabled brands: %w", err)
	}
	list, err := pgx.CollectRows(rows, collectBrand)
	if err != nil {
		return nil, fmt.Errorf("enabled brands: %w", err)
	}
	return list, nil
}

// SetEnabledBrands makes ids exactly the brands the workspace may redeem.
// An id the catalog does not hold refuses the whole change
// (UnknownBrandsError); a workspace that does not exist is store.ErrNotFound.
func (s *Store) SetEnabledBrands(ctx context.Context, workspaceID string, ids []string) ([]Brand, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("enable brands: %w", err)
	}
	defer tx.Rollback(ctx)
	var exists bool
	// The workspace row is locked so concurrent changes apply one after the other.
	if err := tx.QueryRow(ctx, `SELECT true FROM workspaces WHERE id = $1 FOR NO KEY UPDATE`, workspaceID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("enable brands: %w", store.NoRows(err, store.ErrNotFound))
	}
	rows, err := tx.Query(ctx, `SELECT id FROM brands WHERE id = ANY ($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("enable brands: %w", err)
	}
	known, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("enable brands: %w", err)
	}
	var unknown []int
	for i, id := range ids {
		if !slices.Contains(known, id) {
			unknown = append(unknown, i)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownBrandsError{Indexes: unknown}
	}
	var b pgx.Batch
	b.Queue(`DELETE FROM workspace_brands WHERE workspace_id = $1 AND NOT (brand_id = ANY ($2))`, workspaceID, ids)
	b.Queue(`INSERT INTO workspace_brands (workspace_id, brand_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
		workspaceID, ids)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("enable brands: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("enable brands: commit: %w", err)
	}
	return s.EnabledBrands(ctx, workspaceID)
}

// ImportBrands inserts or updates the brands, by id, in one database
// transaction: all of them or none.
func (s *Store) ImportBrands(ctx context.Context, brands []Brand) error {
	n := len(brands)
	ids, names, curs, providers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	mins, maxs := make([]int64, n), make([]int64, n)
	denoms := make([]string, n) // Postgres array literals: pgx cannot send a jagged bigint[][]
	for i, b := range brands {
		ids[i], names[i], curs[i], providers[i], mins[i], maxs[i] = b.ID, b.Name, string(b.Currency), b.Provider, b.MinAmount, b.MaxAmount
		parts := make([]string, len(b.Denominations))
		for j, d := range b.Denominations {
			parts[j] = strconv.FormatInt(d, 10)
		}
		denoms[i] = "{" + strings.Join(parts, ",") + "}"
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO brands (id, name, currency, min_amount, max_amount, denominations, provider)
		SELECT u.id, u.name, u.currency, u.min, u.max, u.denoms::bigint[], u.provider
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
			AS u(id, name, currency, min, max, denoms, provider)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, currency = EXCLUDED.currency,
			min_amount = EXCLUDED.min_amount, max_amount = EXCLUDED.max_amount,
			denominations = EXCLUDED.denominations, provider = EXCLUDED.provider, updated_at = now()`,
		ids, names, curs, mins, maxs, denoms, providers)
	if err != nil {
		return fmt.Errorf("import brands: %w", err)
	}
	return nil
}

// RowError is a malformed brand in an import file: its line (1-based),
// column (1-based; for CSV the field's position, for JSON the character
// where the problem was found) and the field it concerns.
type RowError struct {
	Line, Column int
	Field        string
	Message      string
}

func (e *RowError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("line %d, column %d: %s: %s", e.Line, e.Column, e.Field, e.Message)
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// Catalog file limits.
const (
	brandIDLenMax   = 64
	brandNameLenMax = 200
	denominationMax = 50
	amountMax       = 1_000_000_000_00
)

// csvColumns are the columns of a CSV catalog, in any order; the header
// row names them. denominations is a space- or '|'-separated list.
var csvColumns = []string{"id", "name", "currency", "minAmount", "maxAmount", "denominations", "provider"}

// ParseCatalog reads a catalog file: JSON (an array of brands) when it
// starts with '[', CSV with a header row otherwise. The first malformed
// brand is a *RowError naming its line and column; a file with any is
// refused whole. providers are the provider names that may be named.
func ParseCatalog(data []byte, providers []string) ([]Brand, error) {
	var brands []Brand
	var err error
	if trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(trimmed) > 0 && trimmed[0] == '[' {
		brands, err = parseCatalogJSON(data, providers)
	} else {
		brands, err = parseCatalogCSV(data, providers)
	}
	if err != nil {
		return nil, err
	}
	if len(brands) == 0 {
		return nil, &RowError{Line: 1, Column: 1, Message: "the file holds no brands"}
	}
	return brands, nil
}

func parseCatalogCSV(data []byte, providers []string) ([]Brand, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, csvError(err)
	}
	col := make(map[string]int)
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if !slices.Contains(csvColumns, h) {
			return nil, &RowError{Line: 1, Column: i + 1, Field: h, Message: "unknown column; want " + strings.Join(csvColumns, ", ")}
		}
		if _, dup := col[h]; dup {
			return nil, &RowError{Line: 1, Column: i + 1, Field: h, Message: "column named twice"}
		}
		col[h] = i
	}
	for _, need := range []string{"id", "name", "currency", "minAmount", "maxAmount"} {
		if _, ok := col[need]; !ok {
			return nil, &RowError{Line: 1, Column: len(header) + 1, Field: need, Message: "missing column"}
		}
	}
	seen := make(map[string]int)
	var brands []Brand
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(header) {
			return nil, &RowError{Line: line, Column: min(len(rec), len(header)) + 1,
				Message: fmt.Sprintf("has %d fields, the header %d", len(rec), len(header))}
		}
		get := func(name string) (string, int) {
			i, ok := col[name]
			if !ok {
				return "", 0
			}
			return strings.TrimSpace(rec[i]), i + 1
		}
		var b Brand
		fail := func(field, msg string) error {
			_, c := get(field)
			return &RowError{Line: line, Column: c, Field: field, Message: msg}
		}
		b.ID, _ = get("id")
		b.Name, _ = get("name")
		cur, _ := get("currency")
		b.Currency = ledger.Currency(cur)
		for _, f := range []struct {
			name string
			dst  *int64
		}{{"minAmount", &b.MinAmount}, {"maxAmount", &b.MaxAmount}} {
			s, _ := get(f.name)
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fail(f.name, "must be an integer number of minor units")
			}
			*f.dst = n
		}
		if s, _ := get("denominations"); s != "" {
			for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '|' }) {
				n, err := strconv.ParseInt(part, 10, 64)
				if err != nil {
					return nil, fail("denominations", "must be integers separated by spaces or |")
				}
				b.Denominations = append(b.Denominations, n)
			}
		}
		b.Provider, _ = get("provider")
		if field, msg := checkBrand(&b, providers); field != "" {
			return nil, fail(field, msg)
		}
		if first, dup := seen[b.ID]; dup {
			return nil, fail("id", fmt.Sprintf("brand %q is on line %d already", b.ID, first))
		}
		seen[b.ID] = line
		brands = append(brands, b)
	}
	return brands, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &RowError{Line: pe.Line, Column: pe.Column, Message: pe.Err.Error()}
	}
	if errors.Is(err, io.EOF) {
		return &RowError{Line: 1, Column: 1, Message: "the file is empty; want a header row"}
	}
	return &RowError{Line: 1, Column: 1, Message: err.Error()}
}

// catalogBrand is a brand as a JSON catalog spells it.
type catalogBrand struct {
	ID            string  `json:"id"`
	Name          string  `json:"name"`
	Currency      string  `json:"currency"`
	MinAmount     int64   `json:"minAmount"`
	MaxAmount     int64   `json:"maxAmount"`
	Denominations []int64 `json:"denominations"`
	Provider      string  `json:"provider"`
}

func parseCatalogJSON(data []byte, providers []string) ([]Brand, error) {
	at := func(offset int64, field, msg string) error {
		line, col := lineColumn(data, offset)
		return &RowError{Line: line, Column: col, Field: field, Message: msg}
	}
	// The whole file first: syntax errors carry offsets into it.
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, at(se.Offset-1, "", err.Error()) // the offending byte is the last one read
		}
		return nil, at(0, "", "want a JSON array of brands")
	}
	// Then each brand strictly, from where it starts in the file.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.Token() // [
	seen := make(map[string]int)
	brands := make([]Brand, 0, len(items))
	for range items {
		start := dec.InputOffset()
		for start < int64(len(data)) && strings.ContainsRune(" \t\r\n,", rune(data[start])) {
			start++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, at(start, "", err.Error())
		}
		one := json.NewDecoder(bytes.NewReader(raw))
		one.DisallowUnknownFields()
		var cb catalogBrand
		if err := one.Decode(&cb); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				// Point at the value: after the field's name and its colon.
				offset := te.Offset
				if i := bytes.Index(raw, []byte(`"`+te.Field+`"`)); i >= 0 {
					offset = skipSpace(raw, int64(i+len(te.Field)+2))
				}
				return nil, at(start+offset, te.Field, "must be a "+jsonTypeName(te.Type.Kind().String()))
			}
			if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				// The decoder does not say where; the field's name in this object does.
				if i := bytes.Index(raw, []byte(name)); i >= 0 {
					return nil, at(start+int64(i), "", "unknown field "+name)
				}
			}
			return nil, at(start, "", err.Error())
		}
		b := Brand{ID: cb.ID, Name: cb.Name, Currency: ledger.Currency(cb.Currency), MinAmount: cb.MinAmount,
			MaxAmount: cb.MaxAmount, Denominations: cb.Denominations, Provider: cb.Provider}
		if field, msg := checkBrand(&b, providers); field != "" {
			return nil, at(start, field, msg)
		}
		line, _ := lineColumn(data, start)
		if first, dup := seen[b.ID]; dup {
			return nil, at(start, "id", fmt.Sprintf("brand %q is on line %d already", b.ID, first))
		}
		seen[b.ID] = line
		brands = append(brands, b)
	}
	return brands, nil
}

// skipSpace moves an offset past spaces and a colon, onto a value.
func skipSpace(data []byte, offset int64) int64 {
	for offset < int64(len(data)) && strings.ContainsRune(" \t\r\n:", rune(data[offset])) {
		offset++
	}
	return offset
}

// jsonTypeName names a Go kind as a JSON type.
func jsonTypeName(kind string) string {
	switch kind {
	case "int64":
		return "whole number"
	case "slice":
		return "list of whole numbers"
	}
	return kind
}

// lineColumn turns a byte offset into a 1-based line and column.
func lineColumn(data []byte, offset int64) (int, int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// checkBrand validates a parsed brand (defaulting its provider) and names
// the first field that is wrong.
func checkBrand(b *Brand, providers []string) (field, msg string) {
	if b.Provider == "" {
		b.Provider = SandboxProviderName
	}
	switch {
	case b.ID == "" || len(b.ID) > brandIDLenMax || !printableID(b.ID):
		return "id", fmt.Sprintf("must be 1 to %d letters, digits, '-', '_' or '.'", brandIDLenMax)
	case strings.TrimSpace(b.Name) == "" || len([]rune(b.Name)) > brandNameLenMax || strings.ContainsRune(b.Name, 0):
		return "name", fmt.Sprintf("must be 1 to %d characters", brandNameLenMax)
	}
	if _, err := ledger.ParseCurrency(string(b.Currency)); err != nil {
		return "currency", "must be an ISO 4217 code such as USD"
	}
	switch {
	case b.MinAmount <= 0 || b.MinAmount > amountMax:
		return "minAmount", "must be a positive integer number of minor units"
	case b.MaxAmount < b.MinAmount || b.MaxAmount > amountMax:
		return "maxAmount", "must be at least minAmount"
	case len(b.Denominations) > denominationMax:
		return "denominations", fmt.Sprintf("must be at most %d values", denominationMax)
	case !slices.Contains(providers, b.Provider):
		return "provider", "must be one of " + strings.Join(providers, ", ")
	}
	for _, d := range b.Denominations {
		if d < b.MinAmount || d > b.MaxAmount {
			return "denominations", "each must be between minAmount and maxAmount"
		}
	}
	slices.Sort(b.Denominations)
	b.Denominations = slices.Compact(b.Denominations)
	return "", ""
}

func printableID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
