package validate

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/orbt/orbt/httperr"
)

// Page sizes.
const (
	PageLimitDefault = 50
	PageLimitMax     = 500
)

// Page is a request for one page of a list: Limit rows after Key, the sort
// key of the last row of the previous page ("" for the first page).
type Page struct {
	Limit int
	Key   string
}

// KeyCheck tells whether a decoded cursor holds a key of the list that
// issued it.
type KeyCheck func(key string) bool

// IDKey accepts keys that are ids of one type ("txn" for transactions).
func IDKey(prefix string) KeyCheck {
	return func(key string) bool {
		return strings.HasPrefix(key, prefix+"_") && len(key) <= IDLenMax && Printable(key)
	}
}

// SerialKey accepts keys that are positive integers (ledger entry ids).
func SerialKey(key string) bool {
	n, err := strconv.ParseInt(key, 10, 64)
	return err == nil && n > 0
}

// cursorEncoding keeps cursors opaque and URL-safe. A cursor is the sort
// key of a page's last row; opaque, so a list can change its key without
// breaking clients that only pass cursors back.
var cursorEncoding = base64.RawURLEncoding

// ReadPage reads ?limit= and ?cursor=. A cursor this server did not issue,
// or one issued by another list, is a 400 naming cursor.
func ReadPage(r *http.Request, check KeyCheck) (Page, *httperr.Error) {
	var v Validator
	q := r.URL.Query()
	p := Page{Limit: PageLimitDefault}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > PageLimitMax {
			v.Add("limit", fmt.Sprintf("must be an integer from 1 to %d", PageLimitMax))
		}
		p.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		key, err := cursorEncoding.DecodeString(c)
		if err != nil || len(c) > 2*IDLenMax || !check(string(key)) {
			v.Add("cursor", "is not a cursor this list returned")
		}
		p.Key = string(key)
	}
	return p, v.Err()
}

// List is a page of results as every native list answers it.
type List[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"nextCursor"`
}

// PageOf trims a result fetched with Limit+1 rows and sets the cursor of
// the next page from the last row's sort key.
func PageOf[T any](items []T, limit int, keyOf func(T) string) List[T] {
	l := List[T]{Data: items}
	if l.Data == nil {
		l.Data = []T{}
	}
	if len(items) > limit {
		l.Data = items[:limit]
		next := cursorEncoding.EncodeToString([]byte(keyOf(items[limit-1])))
		l.NextCursor = &next
	}
	return l
}
