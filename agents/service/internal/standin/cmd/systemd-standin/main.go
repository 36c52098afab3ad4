// Command systemd-standin runs the systemd stand-in of package standin on
// a bus, for lab tests on machines without systemd:
//
//	systemd-standin -bus unix:path=/tmp/lab/bus \
//		-unit 'web.service=exec sleep infinity' -notify 'db.service=...' -masked old.service
//
// Commands run with /bin/sh -c. With -start-bus DIR it first starts its own
// dbus-daemon listening on DIR/bus. It prints "ready ADDRESS" once it owns
// org.freedesktop.systemd1 and runs until SIGINT or SIGTERM, then kills
// the units' processes.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hactl/hactl/agents/service/internal/standin"
)

type unitFlags map[string]standin.Unit

func (u unitFlags) add(spec string, notify bool) error {
	name, cmd, ok := strings.Cut(spec, "=")
	if !ok || name == "" || cmd == "" {
		return fmt.Errorf("want NAME=COMMAND, got %q", spec)
	}
	u[name] = standin.Unit{Argv: []string{"/bin/sh", "-c", cmd}, Notify: notify}
	return nil
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("systemd-standin: ")
	units := unitFlags{}
	bus := flag.String("bus", os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"), "D-Bus address to serve on")
	startBus := flag.String("start-bus", "", "start a dbus-daemon listening on `DIR`/bus and serve on it")
	dir := flag.String("dir", os.TempDir(), "directory for the ready files of -notify units")
	flag.Func("unit", "a Type=simple unit: `NAME=COMMAND` (repeatable)", func(s string) error { return units.add(s, false) })
	flag.Func("notify", "a Type=notify unit: `NAME=COMMAND`, ready once it creates $"+standin.ReadyEnv, func(s string) error { return units.add(s, true) })
	flag.Func("masked", "a masked unit `NAME`", func(s string) error {
		units[s] = standin.Unit{Masked: true}
		return nil
	})
	flag.Parse()

	if *startBus != "" {
		b, err := standin.StartBus(*startBus)
		if err != nil {
			log.Fatal(err)
		}
		defer b.Kill()
		*bus = b.Addr
	}
	if *bus == "" {
		log.Fatal("no bus: pass -bus, -start-bus or set DBUS_SYSTEM_BUS_ADDRESS")
	}
	s := standin.New(*dir, units)
	defer s.Close()
	if err := s.Serve(*bus); err != nil {
		log.Print(err)
		return
	}
	fmt.Println("ready", *bus)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
