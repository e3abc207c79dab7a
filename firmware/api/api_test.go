package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	opts.Logger = quiet
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func TestStatusEndpoint(t *testing.T) {
	sup := supervise.New(supervise.Options{Logger: quiet})
	sup.Add(supervise.Func{ServiceName: "api", Fn: func(ctx context.Context, ready func()) error { ready(); <-ctx.Done(); return nil }})
	sup.Add(supervise.Func{ServiceName: "broken", Fn: func(ctx context.Context, ready func()) error { return errors.New("port 443 in use") }})
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sup.Stop(context.Background())

	_, cfgErr := config.Parse([]byte("[cache]\nmax_percent = 300\n"), "/boot/outpost.toml", "")
	cfg := config.Default()
	cfg.Interfaces = []config.Interface{{Name: "lo", Role: config.RoleWAN}}
	_, ts := testServer(t, Options{
		Version: "v1.2.3", Mode: ModeDaemon, ReadOnlyAnonymous: true, Started: time.Now().Add(-90 * time.Second),
		Config: cfg, ConfigSource: "/boot/outpost.toml", ConfigErr: cfgErr, Supervisor: sup,
		Notices: []string{"no OUTPOST-DATA partition"},
	})
	deadline := time.Now().Add(5 * time.Second)
	var st *Status
	for {
		var err error
		st, _, err = (&Client{BaseURL: ts.URL}).Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Services[1].State == supervise.BackingOff || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.Version != "v1.2.3" || st.Mode != ModeDaemon || st.UptimeSeconds < 90 || st.Hostname == "" || st.Ready {
		t.Errorf("status %+v", st)
	}
	if len(st.Services) != 2 || st.Services[0].State != supervise.Running || st.Services[1].LastError != "port 443 in use" {
		t.Errorf("services %+v", st.Services)
	}
	if !st.Config.SafeMode || len(st.Config.Errors) != 1 || st.Config.Errors[0].Key != "cache.max_percent" || st.Config.Errors[0].Line != 2 {
		t.Errorf("config status %+v", st.Config)
	}
	var lo *Interface
	for i := range st.Interfaces {
		if st.Interfaces[i].Name == "lo" {
			lo = &st.Interfaces[i]
		}
	}
	if lo == nil || !lo.Configured || lo.Role != "wan" || !strings.Contains(strings.Join(lo.Addresses, " "), "127.0.0.1/8") {
		t.Errorf("lo: %+v", lo)
	}

	var human bytes.Buffer
	if err := WriteStatus(&human, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"outpost v1.2.3 on ", "(daemon), up 1m3", "NOT READY", "SAFE MODE", "/boot/outpost.toml:2:15: cache.max_percent",
		"NOTICE: no OUTPOST-DATA partition", "broken", "backing off (retry in", "port 443 in use", "lo", "127.0.0.1/8"} {
		if !strings.Contains(human.String(), want) {
			t.Errorf("human status lacks %q:\n%s", want, human.String())
		}
	}
}

func TestPowerEndpointsNeedTheToken(t *testing.T) {
	actions := make(chan PowerAction, 2)
	token := config.NewSecret("0123456789abcdef-token")
	_, ts := testServer(t, Options{Token: token, Power: func(a PowerAction) { actions <- a }})
	_, noToken := testServer(t, Options{Power: func(a PowerAction) { actions <- a }})
	_, daemon := testServer(t, Options{Token: token})

	tests := []struct {
		name   string
		url    string
		auth   string
		method string
		code   int
		action PowerAction
	}{
		{"reboot with the token", ts.URL + "/api/v1/reboot", "Bearer 0123456789abcdef-token", "POST", 202, Reboot},
		{"poweroff with the token", ts.URL + "/api/v1/poweroff", "Bearer 0123456789abcdef-token", "POST", 202, PowerOff},
		{"no token", ts.URL + "/api/v1/reboot", "", "POST", 401, ""},
		{"wrong token", ts.URL + "/api/v1/reboot", "Bearer 0123456789abcdef-tokeX", "POST", 401, ""},
		{"not a bearer", ts.URL + "/api/v1/reboot", "Basic 0123456789abcdef-token", "POST", 401, ""},
		{"GET is not allowed", ts.URL + "/api/v1/reboot", "Bearer 0123456789abcdef-token", "GET", 405, ""},
		{"no token configured", noToken.URL + "/api/v1/reboot", "Bearer anything", "POST", 403, ""},
		{"a daemon does not power off its host", daemon.URL + "/api/v1/poweroff", "Bearer 0123456789abcdef-token", "POST", 501, ""},
		{"unknown endpoint", ts.URL + "/api/v1/nothing", "", "GET", 404, ""},
		{"unknown page", ts.URL + "/nothing", "", "GET", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if tt.action != "" {
				select {
				case a := <-actions:
					if a != tt.action {
						t.Errorf("action %s, want %s", a, tt.action)
					}
				case <-time.After(2 * time.Second):
					t.Error("power action not carried out")
				}
			}
		})
	}
	select {
	case a := <-actions:
		t.Errorf("unexpected power action %s", a)
	default:
	}
}

// The API runs as a supervised service: it listens, reports ready, and
// shuts down when stopped.
func TestServiceListensAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sup := supervise.New(supervise.Options{Logger: quiet})
	s := New(Options{Version: "v0", Logger: quiet, Supervisor: sup, ReadOnlyAnonymous: true})
	sup.Add(s.Service(addr))
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sup.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the API service never became ready")
	}
	st, _, err := (&Client{BaseURL: "http://" + addr}).Status(context.Background())
	if err != nil || st.Version != "v0" || !st.Ready {
		t.Fatalf("status %+v, %v", st, err)
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&Client{BaseURL: "http://" + addr}).Status(context.Background()); err == nil {
		t.Error("the API still answers after Stop")
	}
}
