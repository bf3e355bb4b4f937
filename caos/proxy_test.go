package main

import (
	"bufio"
	"net"
	"os"
	"testing"
	"time"
)

// eco is a TCP echo server on a free loopback port.
func eco(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					c.Write(buf[:n])
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// linea writes s and a newline and reads one line back within espera.
func linea(c net.Conn, r *bufio.Reader, s string, espera time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(espera))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(s + "\n")); err != nil {
		return "", err
	}
	l, err := r.ReadString('\n')
	return l, err
}

func TestProxyReenviaCortaSinCerrarYSana(t *testing.T) {
	p, err := nuevoProxy(eco(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Cerrar()
	c, err := net.Dial("tcp", p.Direccion())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)

	// Forward.
	if l, err := linea(c, r, "uno", 2*time.Second); err != nil || l != "uno\n" {
		t.Fatalf("before the cut: %q, %v", l, err)
	}

	// Cut: nothing comes back, and the connection is not closed (a read
	// times out instead of returning EOF or a reset).
	p.Cortar()
	l, err := linea(c, r, "dos", 300*time.Millisecond)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("while cut: got %q, %v; want a read timeout (silence, connection open)", l, err)
	}
	// A new connection is accepted but gets no answer either.
	c2, err := net.Dial("tcp", p.Direccion())
	if err != nil {
		t.Fatalf("while cut, a new connection must still be accepted: %v", err)
	}
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	if l, err := linea(c2, r2, "nueva", 300*time.Millisecond); err == nil {
		t.Fatalf("while cut a new connection got an answer %q", l)
	}

	// Heal: what was held arrives, both connections work again.
	p.Sanar()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if l, err := r.ReadString('\n'); err != nil || l != "dos\n" {
		t.Fatalf("after healing, the held line: %q, %v", l, err)
	}
	if l, err := linea(c, r, "tres", 2*time.Second); err != nil || l != "tres\n" {
		t.Fatalf("after healing: %q, %v", l, err)
	}
	c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if l, err := r2.ReadString('\n'); err != nil || l != "nueva\n" {
		t.Fatalf("after healing, the new connection's held line: %q, %v", l, err)
	}
	if n := p.Conexiones(); n != 4 {
		t.Errorf("open connections: %d, want 4 (two clients, two to the destination)", n)
	}

	// Close: the clients see their connection end.
	p.Cerrar()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("after Cerrar the client connection is still open")
	}
	if _, err := net.DialTimeout("tcp", p.Direccion(), time.Second); err == nil {
		t.Fatal("after Cerrar the proxy still accepts connections")
	}
}

// The zombie plan finds the frozen replica's database connections by the
// local ports of its sockets.
func TestPuertosLocalesIncluyeUnaConexionPropia(t *testing.T) {
	c, err := net.Dial("tcp", eco(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, puerto, _ := net.SplitHostPort(c.LocalAddr().String())
	ps, err := puertosLocales(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !ps[puerto] {
		t.Fatalf("local port %s of an open connection not among %v", puerto, ps)
	}
}
