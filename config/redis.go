package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ParseRedisURL reads REDIS_URL in one of three forms, for asynq and every
// other use of Redis in the process:
//
//	redis://[user:password@]host:port[/db]          one server (rediss:// for TLS)
//	redis-sentinel://[user:password@]s1:26379,s2:26379,s3:26379[/db]?master=NAME[&password=P]
//	redis-cluster://[user:password@]n1:6379,n2:6379,n3:6379
//
// In the Sentinel form the URL's user and password are the sentinels'
// (as asynq and go-redis read it) and ?password= is the master's;
// rediss-sentinel:// and rediss-cluster:// use TLS. go-redis parses each
// form; the options asynq carries to its connections may be added as query
// parameters (dial_timeout, read_timeout, write_timeout, and pool_size but
// on a cluster), and any other is refused rather than silently dropped.
func ParseRedisURL(raw string) (asynq.RedisConnOpt, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error quotes the URL, password included.
		return nil, errors.New("not a URL (several hosts go host:port, comma-separated)")
	}
	switch u.Scheme {
	case "redis", "rediss":
		return parseServerURL(u)
	case "redis-socket":
		return asynq.ParseRedisURI(raw)
	case "redis-sentinel", "rediss-sentinel":
		return parseSentinelURL(u)
	case "redis-cluster", "rediss-cluster":
		return parseClusterURL(u)
	}
	return nil, fmt.Errorf("scheme %q: want redis, rediss, redis-sentinel or redis-cluster", u.Scheme)
}

// carried are the query parameters whose options asynq's connection
// options hold.
var carried = []string{"dial_timeout", "read_timeout", "write_timeout", "pool_size"}

// onlyOptions refuses a query parameter outside allowed.
func onlyOptions(u *url.URL, form string, allowed ...string) error {
	for name := range u.Query() {
		if !slices.Contains(allowed, name) {
			return fmt.Errorf("%s: option %q is not supported (supported: %s)", form, name, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func parseServerURL(u *url.URL) (asynq.RedisConnOpt, error) {
	if err := onlyOptions(u, u.Scheme, append(carried, "db")...); err != nil {
		return nil, err
	}
	o, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Scheme, err)
	}
	return asynq.RedisClientOpt{Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, PoolSize: o.PoolSize,
		TLSConfig: o.TLSConfig}, nil
}

// goRedisURL rewrites a URL listing several hosts into go-redis's form:
// the first host in the authority and the rest as addr parameters.
func goRedisURL(u *url.URL, rename map[string]string) (string, error) {
	hosts := strings.Split(u.Host, ",")
	for _, h := range hosts {
		if h == "" || !strings.Contains(h, ":") {
			return "", fmt.Errorf("host %q: want host:port, comma-separated", h)
		}
	}
	q := u.Query()
	for from, to := range rename {
		if v := q.Get(from); v != "" {
			q.Del(from)
			q.Set(to, v)
		}
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	g := *u
	g.Scheme = strings.TrimSuffix(strings.TrimSuffix(u.Scheme, "-sentinel"), "-cluster")
	g.Host = hosts[0]
	g.RawQuery = q.Encode()
	return g.String(), nil
}

func parseSentinelURL(u *url.URL) (asynq.RedisConnOpt, error) {
	if err := onlyOptions(u, "redis-sentinel", append(carried, "master", "password", "db")...); err != nil {
		return nil, err
	}
	if u.Query().Get("master") == "" {
		return nil, errors.New("redis-sentinel: name the master: ?master=NAME")
	}
	s, err := goRedisURL(u, map[string]string{"master": "master_name"})
	if err != nil {
		return nil, fmt.Errorf("redis-sentinel: %w", err)
	}
	o, err := redis.ParseFailoverURL(s)
	if err != nil {
		return nil, fmt.Errorf("redis-sentinel: %w", err)
	}
	return asynq.RedisFailoverClientOpt{MasterName: o.MasterName, SentinelAddrs: o.SentinelAddrs,
		SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
		Username: o.Username, Password: o.Password, DB: o.DB,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolSize: o.PoolSize, TLSConfig: perHostTLS(o.TLSConfig)}, nil
}

func parseClusterURL(u *url.URL) (asynq.RedisConnOpt, error) {
	if err := onlyOptions(u, "redis-cluster", "dial_timeout", "read_timeout", "write_timeout"); err != nil {
		return nil, err
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		return nil, errors.New("redis-cluster: a cluster has no database number")
	}
	s, err := goRedisURL(u, nil)
	if err != nil {
		return nil, fmt.Errorf("redis-cluster: %w", err)
	}
	o, err := redis.ParseClusterURL(s)
	if err != nil {
		return nil, fmt.Errorf("redis-cluster: %w", err)
	}
	return asynq.RedisClusterClientOpt{Addrs: o.Addrs, MaxRedirects: o.MaxRedirects,
		Username: o.Username, Password: o.Password,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		TLSConfig: perHostTLS(o.TLSConfig)}, nil
}

// perHostTLS drops the server name go-redis takes from the URL's first
// host: with several hosts (sentinels and their master, cluster nodes)
// each connection must check the name of the host it dials, which the TLS
// dialer infers from the address when the config names none.
func perHostTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	c.ServerName = ""
	return c
}
