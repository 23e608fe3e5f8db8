package console

import "testing"

func TestConsoleCookiesAreSecureOutsideLocalhost(t *testing.T) {
	for in, want := range map[string]bool{
		"https://rewards.example.com": true,
		"http://rewards.example.com":  true,
		"http://10.0.0.5:8080":        true,
		"http://localhost:8080":       false,
		"http://127.0.0.1:8080":       false,
		"http://[::1]:8080":           false,
	} {
		if got := secureCookies(in); got != want {
			t.Errorf("secureCookies(%q) = %v, want %v", in, got, want)
		}
	}
}
