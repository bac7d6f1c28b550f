// Command logger is the program of the image the agent's log tests run. It greets on stdout and
// then on stderr, naming itself after its first argument, then writes "tick N" to stdout every
// 100ms until it receives SIGTERM.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	name := "app"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("hello from %s on stdout\n", name)
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintf(os.Stderr, "hello from %s on stderr\n", name)
	time.Sleep(100 * time.Millisecond)
	tick := time.NewTicker(100 * time.Millisecond)
	for i := 1; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
			fmt.Printf("tick %d\n", i)
		}
	}
}
