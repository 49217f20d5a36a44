// Command dashboard is the quickstart with a browser live view: the
// embedded broker also listens for MQTT over WebSocket, and a small HTTP
// server serves one static page that shows public.users live and can
// create, update and delete them.
//
//	npm ci                       # once: MQTT.js for the page (node_modules/mqtt)
//	go run ./examples/dashboard  # http://localhost:8080, MQTT on 1883, WebSocket on 1884
//
// Open the page twice: a write in one appears in the other at once.
package main

import (
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
)

// User is the quickstart's model.
type User struct {
	ID     uint   `json:"id" gorm:"primaryKey"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Status string `json:"status"`
}

//go:embed static
var static embed.FS

// config is what the flags set.
type config struct {
	host, db, httpAddr, mqttJS string
	port, wsPort               int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.host, "host", "localhost", "address the MQTT, WebSocket and HTTP listeners bind to")
	flag.IntVar(&cfg.port, "port", 1883, "MQTT TCP port")
	flag.IntVar(&cfg.wsPort, "ws-port", 1884, "MQTT over WebSocket port (the page connects to it)")
	flag.StringVar(&cfg.httpAddr, "http", ":8080", "HTTP address of the page (host defaults to -host)")
	flag.StringVar(&cfg.db, "db", "dashboard.db", "SQLite database file")
	flag.StringVar(&cfg.mqttJS, "mqttjs", "node_modules/mqtt/dist/mqtt.min.js", "MQTT.js browser bundle (from npm ci)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := start(cfg, log)
	if err != nil {
		log.Error("dashboard failed", "error", err)
		os.Exit(1)
	}
	log.Info("dashboard listening", "page", "http://"+srv.httpAddr+"/", "mqtt", srv.handler.Addr(), "websocket", srv.wsAddr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	if err := srv.close(); err != nil {
		log.Error("shutdown", "error", err)
		os.Exit(1)
	}
}

// server is a running dashboard.
type server struct {
	handler  *mqttspec.Handler
	http     *http.Server
	httpAddr string // host:port of the page
	wsAddr   string // host:port of the WebSocket listener
}

// start opens the database, starts the handler and serves the page.
func start(cfg config, log *slog.Logger) (*server, error) {
	bundle, err := os.ReadFile(cfg.mqttJS)
	if err != nil {
		return nil, fmt.Errorf("MQTT.js bundle (run npm ci at the repository root, or pass -mqttjs): %w", err)
	}
	dsn := "file:" + cfg.db + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.db, err)
	}
	if err := db.AutoMigrate(&User{}); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	h, err := mqttspec.NewHandlerWithGORM(db,
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: cfg.host, Port: cfg.port, EnableWebSocket: true, WSPort: cfg.wsPort}),
		mqttspec.WithLogger(log))
	if err != nil {
		return nil, err
	}
	if err := h.Registry().RegisterModel("public.users", &User{}); err != nil {
		return nil, err
	}
	// A user needs a name: a write without one is refused, and the page
	// shows the error.
	requireName := func(ctx *mqttspec.HookContext) error {
		data, _ := ctx.Data.(map[string]any)
		name, present := data["name"]
		if s, _ := name.(string); (present || ctx.Operation == mqttspec.OperationCreate) && strings.TrimSpace(s) == "" {
			return mqttspec.NewError(mqttspec.CodeInvalidValue, "a user needs a name")
		}
		return nil
	}
	h.Hooks().Register(mqttspec.BeforeCreate, requireName)
	h.Hooks().Register(mqttspec.BeforeUpdate, requireName)
	if err := h.Start(); err != nil {
		return nil, err
	}

	httpAddr := cfg.httpAddr
	if strings.HasPrefix(httpAddr, ":") {
		httpAddr = net.JoinHostPort(cfg.host, httpAddr[1:])
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		_ = h.Shutdown()
		return nil, fmt.Errorf("listen %s: %w", httpAddr, err)
	}
	wsAddr := ""
	if eb, ok := h.Broker().(*mqttspec.EmbeddedBroker); ok {
		wsAddr = eb.WSAddr()
	}
	srv := &server{handler: h, httpAddr: ln.Addr().String(), wsAddr: wsAddr}
	srv.http = &http.Server{Handler: srv.routes(bundle), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "error", err)
		}
	}()
	return srv, nil
}

// routes serves the page, its script, MQTT.js and the page's settings.
func (s *server) routes(bundle []byte) http.Handler {
	files, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(files))
	mux.HandleFunc("GET /mqtt.min.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(bundle)
	})
	// The page connects to the WebSocket listener on the host it was
	// loaded from.
	_, wsPort, _ := net.SplitHostPort(s.wsAddr)
	mux.HandleFunc("GET /config.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "window.DASHBOARD = {wsPort: %s, prefix: %q};\n", wsPort, "spec")
	})
	return mux
}

// close stops the page and the handler.
func (s *server) close() error {
	_ = s.http.Close()
	return s.handler.Shutdown()
}
