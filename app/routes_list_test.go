package app

import (
	"slices"
	"testing"
)

// Routes reads the routes of every surface from the router, without a
// database or a Redis to connect to: what the security sweep walks.
func TestRoutesListsEverySurface(t *testing.T) {
	routes, err := Routes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []Route{{"GET", "/v1/consumers/:id"}, {"POST", "/admin/v1/workspaces"},
		{"POST", "/api/partner/v1/wallets/:walletId/transactions"}, {"GET", "/c/l/:token"},
		{"POST", "/console/team/members/:id/revoke"}, {"GET", "/ops/queues/*path"}, {"GET", "/healthz"}} {
		if !slices.Contains(routes, want) {
			t.Errorf("Routes() lacks %s %s", want.Method, want.Path)
		}
	}
	if len(routes) < 100 {
		t.Errorf("only %d routes", len(routes))
	}
}
