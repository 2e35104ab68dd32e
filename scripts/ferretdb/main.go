// Command ferretdb-launcher runs an embedded FerretDB (SQLite handler, telemetry
// off) on a loopback address for the tests and the development instance, with an
// optional TLS listener (-tls-listen, -tls-cert, -tls-key, -tls-ca) next to or instead of
// the plain TCP one.
//
// The embedded package is used instead of cmd/ferretdb because the latter
// refuses to start unless built from a git checkout with generated version files.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on (empty: no plain TCP)")
	tlsListen := flag.String("tls-listen", "", "TLS address to listen on (empty: no TLS listener)")
	tlsCert := flag.String("tls-cert", "", "PEM server certificate (required with -tls-listen)")
	tlsKey := flag.String("tls-key", "", "PEM server key (required with -tls-listen)")
	tlsCA := flag.String("tls-ca", "", "PEM CA for client certificates (set: clients must present one)")
	dir := flag.String("dir", "", "directory for the SQLite databases (required)")
	verbose := flag.Bool("verbose", false, "log at debug level")
	flag.Parse()

	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if *tlsListen != "" && (*tlsCert == "" || *tlsKey == "") {
		log.Fatal("-tls-listen needs -tls-cert and -tls-key")
	}
	if *listen == "" && *tlsListen == "" {
		log.Fatal("-listen and -tls-listen are both empty")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		log.Fatal(err)
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{
			TCP:         *listen,
			TLS:         *tlsListen,
			TLSCertFile: *tlsCert,
			TLSKeyFile:  *tlsKey,
			TLSCAFile:   *tlsCA,
		},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
