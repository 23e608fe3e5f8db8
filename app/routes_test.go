package app

import "testing"

func TestPublicOriginIsWhatBrowsersSend(t *testing.T) {
	for in, want := range map[string]string{
		"https://Rewards.Example.com:443/": "https://rewards.example.com",
		"http://localhost:8080":            "http://localhost:8080",
		"http://example.com:80/c":          "http://example.com",
		"https://[::1]:8443":               "https://[::1]:8443",
		"not a url":                        "",
	} {
		if got := publicOrigin(in); got != want {
			t.Errorf("publicOrigin(%q) = %q, want %q", in, got, want)
		}
	}
}
