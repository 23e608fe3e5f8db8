package config

import (
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

func TestParseRedisURL(t *testing.T) {
	got, err := ParseRedisURL("redis-sentinel://:sentinel-pw@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/2?master=orbt&password=master-pw&dial_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	f, ok := got.(asynq.RedisFailoverClientOpt)
	if !ok || f.MasterName != "orbt" || strings.Join(f.SentinelAddrs, " ") != "10.0.0.1:26379 10.0.0.2:26379 10.0.0.3:26379" ||
		f.SentinelPassword != "sentinel-pw" || f.Password != "master-pw" || f.DB != 2 || f.DialTimeout != 2*time.Second || f.TLSConfig != nil {
		t.Errorf("sentinel: %+v", got)
	}
	// With TLS each host's own name is checked, not the first sentinel's.
	if got, err = ParseRedisURL("rediss-sentinel://s1:26379,s2:26379?master=orbt"); err != nil ||
		got.(asynq.RedisFailoverClientOpt).TLSConfig == nil || got.(asynq.RedisFailoverClientOpt).TLSConfig.ServerName != "" {
		t.Errorf("rediss-sentinel: %+v %v", got, err)
	}

	got, err = ParseRedisURL("redis-cluster://user:pw@n1:7000,n2:7001,n3:7002?read_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := got.(asynq.RedisClusterClientOpt)
	if !ok || strings.Join(c.Addrs, " ") != "n1:7000 n2:7001 n3:7002" || c.Username != "user" || c.Password != "pw" || c.ReadTimeout != time.Second {
		t.Errorf("cluster: %+v", got)
	}

	got, err = ParseRedisURL("redis://orbt:pw@127.0.0.1:6380/3?pool_size=7&dial_timeout=2s")
	if o, ok := got.(asynq.RedisClientOpt); err != nil || !ok || o.Addr != "127.0.0.1:6380" || o.DB != 3 || o.Username != "orbt" ||
		o.Password != "pw" || o.PoolSize != 7 || o.DialTimeout != 2*time.Second {
		t.Errorf("redis: %+v %v", got, err)
	}

	for raw, want := range map[string]string{
		"redis-sentinel://s1:26379,s2:26379":           "?master=NAME",
		"redis-sentinel://s1:26379,s2?master=m":        "host:port",
		"redis-cluster://n1:7000/1":                    "no database",
		"memcached://x:1":                              "scheme",
		"redis-cluster://n1:7000?bogus_option=1":       "bogus_option",
		"redis-sentinel://:secret@s1:26379,,?master=m": "host:port",
	} {
		_, err := ParseRedisURL(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", raw, err)
		}
	}
}
