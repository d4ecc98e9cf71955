package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves Go's profiles on Config.DebugAddr, when it is set: an
// operator's look at a live server's heap and goroutines (`go tool pprof
// http://127.0.0.1:6060/debug/pprof/heap`), and how `nudge bench soak`
// reads the live heap after a collection. The profiles are on a listener
// of their own, so the API's mux never exposes them.
func (m *Main) serveDebug() error {
	if m.Config.DebugAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.Config.DebugAddr)
	if err != nil {
		return fmt.Errorf("debug listener on %s: %w", m.Config.DebugAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.debug.Serve(ln)
	m.Logger.Info("profiles served", "addr", ln.Addr().String())
	return nil
}
