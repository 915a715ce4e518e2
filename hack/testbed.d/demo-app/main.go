// Command demo-app is the test bed's demo workload: a small HTTP server on :8080.
// The demo images (demo-small, -medium, -large) run this same binary and differ only
// in an incompressible filler file, so image pull times can be compared.
//
//	/healthz  liveness: 200 while the process serves
//	/readyz   readiness: 503 until READY_DELAY (a Go duration, e.g. "5s") has passed
//	          since start, then 200; with REQUIRE_HOST_ENV=DB_HOST, 503 for the pod's
//	          whole life when the host named by $DB_HOST did not resolve at start (a
//	          pod keeps the connection it opened at start, as a database client does)
//	/         "key=value" lines: app (APP_NAME), version (APP_VERSION), pod (hostname),
//	          then each environment variable named in SHOW_ENV (comma-separated), e.g. DB_HOST
//
// `demo-app fill BYTES SEED` writes BYTES deterministic pseudo-random bytes derived from
// SEED to stdout: the images' filler, identical on every rebuild.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "fill" {
		if err := fill(os.Stdout, os.Args[2], os.Args[3]); err != nil {
			log.Fatalf("fill: %v", err)
		}
		return
	}
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: demo-app | demo-app fill BYTES SEED")
		os.Exit(2)
	}
	if err := serve(); err != nil {
		log.Fatal(err)
	}
}

// fill writes n pseudo-random bytes from a ChaCha8 stream keyed by sha256(seed):
// incompressible, so the image layer is as large compressed as on disk.
func fill(w io.Writer, n, seed string) error {
	size, err := strconv.ParseInt(n, 10, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("BYTES must be a non-negative integer, got %q", n)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	_, err = io.CopyN(bw, rand.NewChaCha8(sha256.Sum256([]byte(seed))), size)
	if err != nil {
		return err
	}
	return bw.Flush()
}

func serve() error {
	delay, err := readyDelay()
	if err != nil {
		return err
	}
	readyAt := time.Now().Add(delay)
	name := envOr("APP_NAME", "demo-app")
	hostErr := requiredHost()
	if hostErr != nil {
		log.Printf("not ready: %v", hostErr)
	}
	host, _ := os.Hostname()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if hostErr != nil {
			http.Error(w, hostErr.Error(), http.StatusServiceUnavailable)
			return
		}
		if left := time.Until(readyAt); left > 0 {
			http.Error(w, fmt.Sprintf("not ready for another %s", left.Round(time.Millisecond)), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "app=%s\nversion=%s\npod=%s\n", name, os.Getenv("APP_VERSION"), host)
		for _, key := range strings.Split(os.Getenv("SHOW_ENV"), ",") {
			if key = strings.TrimSpace(key); key != "" {
				fmt.Fprintf(w, "%s=%s\n", key, os.Getenv(key))
			}
		}
	})

	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// Stop promptly on SIGTERM: a drill measures how fast pods are replaced.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("%s listening on :8080 (ready after %s)", name, delay)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func readyDelay() (time.Duration, error) {
	v := os.Getenv("READY_DELAY")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("READY_DELAY must be a non-negative Go duration such as 5s, got %q", v)
	}
	return d, nil
}

// requiredHost resolves the host named by the variable REQUIRE_HOST_ENV names, once.
func requiredHost() error {
	key := os.Getenv("REQUIRE_HOST_ENV")
	if key == "" {
		return nil
	}
	host := os.Getenv(key)
	if host == "" {
		return fmt.Errorf("%s is empty", key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return fmt.Errorf("cannot reach %s=%s: %v", key, host, err)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
