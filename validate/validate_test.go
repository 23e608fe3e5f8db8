package validate

import (
	"net/http"
	"testing"
	"time"
)

func TestPreferWait(t *testing.T) {
	for prefer, want := range map[string]time.Duration{
		"":                      0,
		"wait=3":                3 * time.Second,
		"respond-async, wait=2": 2 * time.Second,
		"WAIT=1":                time.Second,
		"wait=60":               PreferWaitMax,
		"wait=-1":               0,
		"wait=soon":             0,
		"handling=strict":       0,
	} {
		h := http.Header{}
		if prefer != "" {
			h.Set("Prefer", prefer)
		}
		if got := PreferWait(h); got != want {
			t.Errorf("Prefer: %q: wait %s, want %s", prefer, got, want)
		}
	}
}
