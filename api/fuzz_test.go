package api

import "testing"

// FuzzParseCacheConfig: the --cache flag parser never panics, and what it
// accepts builds a cache or fails with an error.
func FuzzParseCacheConfig(f *testing.F) {
	for _, s := range []string{
		"name=default", "name=sessions,items=1000,blocksize=65536,keysize=2048,maxbytes=64M",
		"items=0", "maxbytes=1G,items=10", "name=a,name=b", "bogus=1", "items=-5", "blocksize=9999999999999999999", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseCacheConfig(s)
		if err != nil {
			return
		}
		if cfg.MaxItems > 1<<20 || cfg.MaxItemSize > 1<<24 || cfg.MaxBytes > 1<<30 {
			return // valid but too big to build in a fuzz run
		}
		if c, err := NewCache(cfg); err == nil && c.Name() == "" {
			t.Errorf("NewCache(%+v) made a cache without a name", cfg)
		}
	})
}
